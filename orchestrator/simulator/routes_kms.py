"""`/api/security/aws-kms` and its `rekey-external` action."""

from __future__ import annotations

import json
from typing import Any

import anyio

from orchestrator.simulator.cluster import ClusterState
from orchestrator.simulator.errors import ApiError, DropConnection, http_error, not_found
from orchestrator.simulator.http import Ctx, Response, collection, instance
from orchestrator.simulator.jobs import Job
from orchestrator.simulator.model import KmsConfig
from orchestrator.simulator.query import MAX_RETURN_TIMEOUT, Resource

# The POST's documented default is 1 s (the docs also say 0; clients should always send it).
DEFAULT_POST_RETURN_TIMEOUT = 1
BUSY_CODE = 8  # "resource in use": a rekey of this configuration is already running
UNREACHABLE_CODE = "65537604"  # no public code is documented for this health state

_REF = {"name": None, "uuid": None}
_STATUS = {"code": None, "message": None}
AWS_KMS = Resource(
    schema={
        "uuid": None,
        "scope": None,
        "svm": _REF,
        "key_id": None,
        "region": None,
        "polling_period": None,
        "timeout": None,
        "service": None,
        "default_domain": None,
        "host": None,
        "port": None,
        "proxy_type": None,
        "proxy_host": None,
        "proxy_port": None,
        "proxy_username": None,
        "access_key_id": None,
        "verify": None,
        "verify_host": None,
        "verify_ip": None,
        "state": {"cluster_state": None, **_STATUS},
        "amazon_reachability": {"reachable": None, **_STATUS},
        "ekmip_reachability": {"node": _REF, "reachable": None, **_STATUS},
        "_links": {"self": {"href": None}},
    },
    keys=("uuid", "svm.name"),
    advanced=frozenset({"state", "amazon_reachability", "ekmip_reachability"}),
)


def kms_record(cluster: ClusterState, config: KmsConfig, advanced: bool) -> dict[str, Any]:
    """The ONTAP record of one configuration (health fields only when `advanced`)."""
    record: dict[str, Any] = {"uuid": config.uuid, "scope": config.scope}
    if config.scope == "svm":
        record["svm"] = config.svm.ref()
    record.update(
        key_id=config.key_id,
        region="us-east-1",
        polling_period=60,
        timeout=10,
        service="kms",
        default_domain="amazonaws.com",
        host="kms.us-east-1.amazonaws.com",
        port=443,
        proxy_type="http",
        proxy_port=0,
        access_key_id="AKIASIMULATEDKEY0001",
        verify=True,
        verify_host=True,
        verify_ip=False,
        _links={"self": {"href": f"/api/security/aws-kms/{config.uuid}"}},
    )
    if advanced:
        record.update(_health(cluster, config))
    return record


def _health(cluster: ClusterState, config: KmsConfig) -> dict[str, Any]:
    nodes = [
        _reachability(n.name not in config.ekmip_unreachable, node={"name": n.name, "uuid": n.uuid})
        for n in cluster.nodes
    ]
    healthy = config.amazon_reachable and not config.ekmip_unreachable
    state = {
        "cluster_state": healthy,
        **_status(healthy, "AWS KMS is not reachable from all nodes"),
    }
    return {
        "state": state,
        "amazon_reachability": _reachability(config.amazon_reachable),
        "ekmip_reachability": nodes,
    }


def _reachability(reachable: bool, **extra: Any) -> dict[str, Any]:
    return {**extra, "reachable": reachable, **_status(reachable, "Unable to reach AWS KMS")}


def _status(ok: bool, problem: str) -> dict[str, str]:
    return {"code": "0", "message": ""} if ok else {"code": UNREACHABLE_CODE, "message": problem}


async def list_aws_kms(ctx: Ctx) -> Response:
    """GET /api/security/aws-kms."""
    cluster = ctx.cluster
    return collection(ctx, cluster.configs, lambda c, adv: kms_record(cluster, c, adv), AWS_KMS)


async def get_aws_kms(ctx: Ctx) -> Response:
    """GET /api/security/aws-kms/{uuid}."""
    config = _config(ctx)
    return instance(ctx, config, lambda c, adv: kms_record(ctx.cluster, c, adv), AWS_KMS)


def _config(ctx: Ctx) -> KmsConfig:
    config = ctx.cluster.config_by_uuid.get(ctx.args["uuid"])
    if config is None:
        raise not_found("uuid")
    return config


async def rekey_external(ctx: Ctx) -> Response:
    """POST /api/security/aws-kms/{uuid}/rekey-external.

    Order: validate -> drop-before (nothing happened) -> count the attempt -> busy (409,
    code 8) -> synchronous fault -> create the job -> drop-after (the job runs) -> wait up
    to return_timeout -> 201/200 with the job if it ended, else 202 with the job link.
    """
    config = _config(ctx)
    key_id = _key_id(ctx.body)
    wait = ctx.params.int_value(
        "return_timeout", DEFAULT_POST_RETURN_TIMEOUT, 0, MAX_RETURN_TIMEOUT
    )
    _maybe_http_error(ctx, config)
    if config.rate_hit("drop_before"):
        raise DropConnection("dropped before the rekey took effect")
    config.attempts += 1
    job = _accept(ctx, config, key_id)
    if config.rate_hit("drop_after"):
        raise DropConnection("dropped after the rekey took effect")
    return await _answer(ctx, job, wait)


def _maybe_http_error(ctx: Ctx, config: KmsConfig) -> None:
    # `requests: rekey` faults answer before the POST takes effect
    for fault in config.rate_faults:
        if (
            fault.kind == "http_errors"
            and fault.requests == "rekey"
            and config.rng.random() < fault.rate
        ):
            status = config.rng.choice(fault.statuses)
            raise http_error(status, ctx.cluster.policy.options.retry_after_s)


def _accept(ctx: Ctx, config: KmsConfig, key_id: str) -> Job:
    cluster = ctx.cluster
    if config.running is not None and not config.running.settled:
        config.refusals[str(BUSY_CODE)] += 1
        raise ApiError(409, BUSY_CODE, "resource in use: a rekey of this key store is running")
    fault = config.active_fault(config.attempts, cluster.timebase.elapsed(ctx.now))
    if fault is not None and fault.path == "sync":
        config.refusals[str(fault.ontap_code)] += 1
        raise ApiError(fault.http_status, fault.ontap_code, fault.text)
    return cluster.start_rekey(config, key_id, fault, ctx.now)


async def _answer(ctx: Ctx, job: Job, wait: int) -> Response:
    remaining = job.end_at - ctx.now
    if remaining > wait:
        await anyio.sleep(wait)
        return Response(202, {"job": job.link()})
    await anyio.sleep(max(0.0, remaining))
    ctx.cluster.finish_now(job)
    now = max(ctx.cluster.timebase.now(), job.end_at)
    record = job.record(now, ctx.cluster.timebase)
    return Response(ctx.cluster.policy.options.rekey_finished_status, {"job": record})


def _key_id(body: bytes) -> str:
    try:
        data = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, 2, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, 2, "The request body must be a JSON object.")
    unknown = sorted(set(data) - {"key_id"})
    if unknown:
        raise ApiError(400, 262197, f'Unexpected argument "{unknown[0]}".', target=unknown[0])
    key_id = data.get("key_id")
    if key_id is None:
        raise ApiError(400, 2, 'Missing value for required field "key_id".', target="key_id")
    if not isinstance(key_id, str) or not key_id.strip():
        raise ApiError(400, 262197, 'Invalid value for field "key_id".', target="key_id")
    return key_id
