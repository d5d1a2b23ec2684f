"""`/api/security/key-stores`: one record per AWS KMS configuration (type aws).

SVMs without an AWS KMS configuration have no key-store record (the simulator does not
model onboard or KMIP key managers).
"""

from __future__ import annotations

from typing import Any

from orchestrator.simulator.errors import not_found
from orchestrator.simulator.http import Ctx, Response, collection, instance
from orchestrator.simulator.model import KmsConfig
from orchestrator.simulator.query import Resource

REF = {"name": None, "uuid": None}
KEY_STORE = Resource(
    schema={
        "uuid": None,
        "svm": REF,
        "scope": None,
        "type": None,
        "location": None,
        "enabled": None,
        "configuration": REF,
        "state": None,
        "_links": {"self": {"href": None}},
    },
    keys=("uuid", "svm.name"),
)


def _builder(ctx: Ctx) -> Any:
    cluster = ctx.cluster

    def build(config: KmsConfig, _advanced: bool) -> dict[str, Any]:
        return {
            "uuid": config.keystore_uuid,
            "svm": config.svm.ref(),
            "scope": config.scope,
            "type": "aws",
            "location": "external",
            "enabled": True,
            "configuration": {"name": config.svm.name, "uuid": config.uuid},
            "state": cluster.keystore_state(config, ctx.now),
            "_links": {"self": {"href": f"/api/security/key-stores/{config.keystore_uuid}"}},
        }

    return build


async def list_key_stores(ctx: Ctx) -> Response:
    """GET /api/security/key-stores."""
    return collection(ctx, ctx.cluster.configs, _builder(ctx), KEY_STORE)


async def get_key_store(ctx: Ctx) -> Response:
    """GET /api/security/key-stores/{uuid}."""
    wanted = ctx.args["uuid"]
    config = next((c for c in ctx.cluster.configs if c.keystore_uuid == wanted), None)
    if config is None:
        raise not_found("uuid")
    return instance(ctx, config, _builder(ctx), KEY_STORE)
