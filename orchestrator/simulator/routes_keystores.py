"""`/api/security/key-stores`: one record per cloud key manager configuration (`type`
aws, akv, gcp or barbican).

The record is shaped by the cluster's version (ontap-rest-notes.md section 4): 9.12/9.13
have `uuid`, `svm`, `type`, `location`; 9.14 adds `scope`, `enabled`, `configuration` and
the instance GET/PATCH; 9.16.1 adds `state` (with `is_svm_kek`), absent on a disabled key
store. Asking for a field the version lacks is ONTAP's 400 for an unknown `fields` entry.
Cluster-scoped records carry no `svm`. SVMs without an AWS KMS configuration have no
key-store record (the simulator does not model onboard or KMIP key managers).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from orchestrator.simulator.errors import invalid_value, not_found, unexpected_argument
from orchestrator.simulator.http import Ctx, Response, collection, instance, json_body
from orchestrator.simulator.model import KmsConfig
from orchestrator.simulator.personality import Personality
from orchestrator.simulator.query import Resource

REF = {"name": None, "uuid": None}
LINKS = {"self": {"href": None}}
BASE_FIELDS: dict[str, Any] = {"uuid": None, "svm": REF, "type": None, "location": None}
CONFIGURATION_FIELDS: dict[str, Any] = {
    "scope": None,
    "enabled": None,
    "configuration": {"name": None, "uuid": None, "_links": LINKS},
}
STATE_FIELDS: dict[str, Any] = {"state": None, "is_svm_kek": None}


@lru_cache(maxsize=8)
def key_store_resource(personality: Personality) -> Resource:
    """The key-store record type of this version."""
    schema = dict(BASE_FIELDS)
    if personality.key_store_configuration:
        schema |= CONFIGURATION_FIELDS
    if personality.key_store_state:
        schema |= STATE_FIELDS
    return Resource(schema={**schema, "_links": LINKS}, keys=("uuid", "svm.name"))


def _builder(ctx: Ctx) -> Any:
    cluster = ctx.cluster
    personality = cluster.personality

    def build(config: KmsConfig, _advanced: bool) -> dict[str, Any]:
        record: dict[str, Any] = {"uuid": config.keystore_uuid}
        if config.scope == "svm":
            record["svm"] = config.svm.ref()
        record |= {"type": config.provider.key_store_type, "location": "external"}
        if personality.key_store_configuration:
            record |= {
                "scope": config.scope,
                "enabled": config.enabled,
                "configuration": {
                    "name": "default",
                    "uuid": config.uuid,
                    "_links": {"self": {"href": _configuration_href(config)}},
                },
            }
        if personality.key_store_state and config.enabled:
            record["state"] = cluster.keystore_state(config, ctx.now)
            record["is_svm_kek"] = False
        record["_links"] = {"self": {"href": f"/api/security/key-stores/{config.keystore_uuid}"}}
        return record

    return build


def _configuration_href(config: KmsConfig) -> str:
    return f"/api/security/{config.provider.collection}/{config.uuid}"


async def list_key_stores(ctx: Ctx) -> Response:
    """GET /api/security/key-stores."""
    resource = key_store_resource(ctx.cluster.personality)
    return collection(ctx, ctx.cluster.configs, _builder(ctx), resource)


def _key_store(ctx: Ctx) -> KmsConfig:
    config = ctx.cluster.config_by_uuid.get(ctx.args["uuid"])
    if config is None:
        raise not_found("uuid")
    return config


async def get_key_store(ctx: Ctx) -> Response:
    """GET /api/security/key-stores/{uuid} (9.14+)."""
    resource = key_store_resource(ctx.cluster.personality)
    return instance(ctx, _key_store(ctx), _builder(ctx), resource)


async def patch_key_store(ctx: Ctx) -> Response:
    """PATCH /api/security/key-stores/{uuid} (9.14+) with `{"enabled": true}`: enables the
    key store, which also completes a failed or interrupted switch (65537610 ends)."""
    config = _key_store(ctx)
    body = json_body(ctx.body)
    for name in sorted(set(body) - {"enabled"}):
        raise unexpected_argument(name)
    if body.get("enabled") is not True:
        raise invalid_value("enabled", 'The value for field "enabled" must be true.')
    config.enabled = True
    config.cleared.add("keystore_switching")
    if config.state_override == "switching":
        config.state_override = None
    return Response(200, {})
