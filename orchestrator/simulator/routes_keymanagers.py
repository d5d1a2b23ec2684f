"""`/api/security/key-managers` and its `migrate` action: the fix for 65537547.

The simulator models one key manager per cluster, the admin SVM's (cluster scope): the
place a data SVM's keys sit when a rekey answers `keys_in_admin_svm`. `POST
/api/security/key-managers/{admin key manager uuid}/migrate` with `{"uuid": <the data
SVM's key manager>}` (its AWS KMS configuration's uuid) moves them, as a job; once that job
ends, the SVM's `keys_in_admin_svm` fault no longer applies.
"""

from __future__ import annotations

from typing import Any

from orchestrator.simulator.cluster import ClusterState
from orchestrator.simulator.errors import (
    invalid_value,
    missing_value,
    not_found,
    unexpected_argument,
)
from orchestrator.simulator.http import Ctx, Response, collection, instance, json_body
from orchestrator.simulator.query import Resource
from orchestrator.simulator.routes_kms import answer

KEY_MANAGER = Resource(
    schema={"uuid": None, "scope": None, "_links": {"self": {"href": None}}},
    keys=("uuid",),
)


def _record(cluster: ClusterState, _advanced: bool) -> dict[str, Any]:
    uuid = cluster.key_manager_uuid
    return {
        "uuid": uuid,
        "scope": "cluster",
        "_links": {"self": {"href": f"/api/security/key-managers/{uuid}"}},
    }


async def list_key_managers(ctx: Ctx) -> Response:
    """GET /api/security/key-managers: the admin SVM's key manager."""
    return collection(ctx, [ctx.cluster], _record, KEY_MANAGER)


async def get_key_manager(ctx: Ctx) -> Response:
    """GET /api/security/key-managers/{uuid}."""
    if ctx.args["uuid"] != ctx.cluster.key_manager_uuid:
        raise not_found("uuid")
    return instance(ctx, ctx.cluster, _record, KEY_MANAGER)


async def migrate(ctx: Ctx) -> Response:
    """POST /api/security/key-managers/{uuid}/migrate `{"uuid": destination}`: a job."""
    cluster = ctx.cluster
    if ctx.args["uuid"] != cluster.key_manager_uuid:
        raise not_found("uuid")
    body = json_body(ctx.body)
    for name in sorted(set(body) - {"uuid"}):
        raise unexpected_argument(name)
    destination = body.get("uuid")
    if destination is None:
        raise missing_value("uuid")
    config = cluster.config_by_uuid.get(destination) if isinstance(destination, str) else None
    if config is None:
        raise invalid_value("uuid", f'The value "{destination}" is not a key manager uuid.')
    wait = ctx.params.return_timeout(cluster.policy.options.post_return_timeout_default)
    return await answer(ctx, cluster.start_migrate(config, ctx.now), wait)
