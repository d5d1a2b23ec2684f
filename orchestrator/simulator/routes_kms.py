"""`/api/security/aws-kms` and its `rekey-external` action."""

from __future__ import annotations

from typing import Any

import anyio

from orchestrator.simulator.cluster import ClusterState
from orchestrator.simulator.errors import (
    ApiError,
    DropConnection,
    http_error,
    invalid_value,
    missing_value,
    not_found,
    unexpected_argument,
)
from orchestrator.simulator.http import Ctx, Response, collection, instance, json_body
from orchestrator.simulator.jobs import Failure, Job
from orchestrator.simulator.model import KmsConfig
from orchestrator.simulator.query import Resource

BUSY_CODE = 8  # "resource in use": a rekey of this configuration is already running
UNREACHABLE_CODE = "346758"  # the documented example of an AWS KMS reachability failure
# the HTTP status of a synchronous health refusal, by code (blocked: 400, node work: 500)
HEALTH_STATUS = {65537556: 400, 65537919: 500}

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
        "encryption_context": None,
        "skip_verify": None,
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
        encryption_context="",
        skip_verify=False,
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
        _reachability(
            n.up and n.name not in config.ekmip_unreachable, node={"name": n.name, "uuid": n.uuid}
        )
        for n in cluster.nodes
    ]
    unavailable = sorted(
        {n.name for n in cluster.nodes if not n.up or n.name in config.ekmip_unreachable}
        | ({n.name for n in cluster.nodes} if not config.amazon_reachable else set())
    )
    healthy = not unavailable
    problem = "AWS KMS key protection is unavailable on the following nodes: " + ", ".join(
        unavailable
    )
    state = {"cluster_state": healthy, **_status(healthy, problem)}
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
    code 8, or queued behind the running job) -> synchronous fault or health refusal ->
    create the job -> drop-after (the job runs) -> wait up to return_timeout -> 201/200
    if it ended (always 202 before 9.14), else 202 with the job link.
    """
    config = _config(ctx)
    key_id = _key_id(ctx)
    options = ctx.cluster.policy.options
    wait = ctx.params.return_timeout(options.post_return_timeout_default)
    _maybe_http_error(ctx, config)
    if config.rate_hit("drop_before"):
        raise DropConnection("dropped before the rekey took effect")
    config.attempts += 1
    job = _accept(ctx, config, key_id)
    if config.rate_hit("drop_after"):
        raise DropConnection("dropped after the rekey took effect")
    response = await answer(ctx, job, wait)
    job.stats_entry["status"] = response.status
    return response


def _maybe_http_error(ctx: Ctx, config: KmsConfig) -> None:
    # `requests: rekey` faults answer before the POST takes effect
    for fault in config.rate_faults:
        if (
            fault.kind == "http_errors"
            and fault.requests == "rekey"
            and config.rng.random() < fault.rate
        ):
            status = config.rng.choice(fault.statuses)
            raise http_error(status, retry_after(ctx.cluster, status))


def retry_after(cluster: ClusterState, status: int) -> int | None:
    """The `Retry-After` a 5xx carries: on a 503 only, and only with `retry_after_on_503`."""
    options = cluster.policy.options
    return options.retry_after_s if status == 503 and options.retry_after_on_503 else None


def _accept(ctx: Ctx, config: KmsConfig, key_id: str) -> Job:
    cluster = ctx.cluster
    busy = config.running is not None and not config.running.settled
    if busy and cluster.policy.options.busy_rekey == "conflict":
        config.refusals[str(BUSY_CODE)] += 1
        raise ApiError(409, BUSY_CODE, "resource in use: a rekey of this key store is running")
    failure = _failure(ctx, config)
    return cluster.start_rekey(config, key_id, failure, ctx.now)


def _failure(ctx: Ctx, config: KmsConfig) -> Failure | None:
    """The failure a job will end with (None: success); raises a synchronous refusal."""
    fault = config.active_fault(config.attempts, ctx.cluster.timebase.elapsed(ctx.now))
    if fault is not None:
        if fault.path == "sync":
            config.refusals[str(fault.ontap_code)] += 1
            raise ApiError(fault.http_status, fault.ontap_code, fault.text)
        return Failure(fault.ontap_code, fault.text)
    health = ctx.cluster.health_failure(config)
    if health is None:
        return None
    path, failure = health
    if path == "sync":
        config.refusals[str(failure.code)] += 1
        raise ApiError(HEALTH_STATUS.get(failure.code, 400), failure.code, failure.message)
    return failure


async def answer(ctx: Ctx, job: Job, wait: int) -> Response:
    """Wait up to `wait` s for the job: 202 with its link if it is still going (always on
    9.12/9.13), else the `rekey_finished_status` with the `rekey_finished_body`."""
    cluster = ctx.cluster
    remaining = job.end_at - ctx.now
    if remaining > wait:
        await anyio.sleep(wait)
        return Response(202, {"job": job.link()})
    await anyio.sleep(max(0.0, remaining))
    cluster.finish_now(job)
    if not cluster.personality.rekey_answers_201:
        return Response(202, {"job": job.link()})
    options = cluster.policy.options
    if options.rekey_finished_body == "empty":
        return Response(options.rekey_finished_status, {})
    if options.rekey_finished_body == "job_uuid":
        return Response(options.rekey_finished_status, {"job": job.link()})
    now = max(cluster.timebase.now(), job.end_at)
    return Response(options.rekey_finished_status, {"job": job.record(now, cluster.timebase)})


# 9.12.1 and 9.13.1 also list `svm` and `scope` in the rekey's request body.
LEGACY_BODY_FIELDS = frozenset({"svm", "scope"})


def _key_id(ctx: Ctx) -> str:
    data = json_body(ctx.body)
    allowed = {"key_id"}
    if not ctx.cluster.personality.rekey_answers_201:
        allowed |= LEGACY_BODY_FIELDS
    for name in sorted(set(data) - allowed):
        raise unexpected_argument(name)
    key_id = data.get("key_id")
    if key_id is None:
        raise missing_value("key_id")
    if not isinstance(key_id, str) or not key_id.strip():
        raise invalid_value("key_id")
    return key_id
