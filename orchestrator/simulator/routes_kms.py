"""The cloud key manager collections (`/api/security/aws-kms`, `azure-key-vaults`,
`gcp-kms`, `barbican-kms`) and their `rekey-external` / `rekey-internal` actions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, Literal

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
from orchestrator.simulator.providers import Provider
from orchestrator.simulator.query import Resource

Operation = Literal["external", "internal"]
BUSY_CODE = 8  # "resource in use": a rekey of this configuration is already running
UNREACHABLE_CODE = "346758"  # the documented example of an AWS KMS reachability failure
SLASH_IN_KEY_NAME_CODE = 65537753  # GCP: "/" is not allowed in key_name
# the HTTP status of a synchronous health refusal, by code (blocked: 400, nodes: 500)
HEALTH_STATUS = {65537556: 400, 65537566: 400, 65537919: 500, 65537729: 500}

_REF = {"name": None, "uuid": None}
_STATUS = {"code": None, "message": None}
_BASE_FIELDS = ("proxy_host", "proxy_username")  # shown only when set (never, here)


@cache
def kms_resource(provider: Provider) -> Resource:
    """The record type of one provider's collection."""
    key_field = provider.key_field or "key_id"
    schema: dict[str, Any] = {"uuid": None, "scope": None, "svm": _REF, key_field: None}
    schema |= dict.fromkeys((*provider.extra_fields(), *_BASE_FIELDS))
    advanced: dict[str, Any] = {
        "state": {"cluster_state": None, **_STATUS},
        provider.reachability: {"reachable": None, **_STATUS},
        "ekmip_reachability": {"node": _REF, "reachable": None, **_STATUS},
    }
    return Resource(
        schema={**schema, **advanced, "_links": {"self": {"href": None}}},
        keys=("uuid", "svm.name"),
        advanced=frozenset(advanced),
    )


def kms_record(cluster: ClusterState, config: KmsConfig, advanced: bool) -> dict[str, Any]:
    """The ONTAP record of one configuration (health fields only when `advanced`)."""
    provider = config.provider
    record: dict[str, Any] = {"uuid": config.uuid, "scope": config.scope}
    if config.scope == "svm":
        record["svm"] = config.svm.ref()
    record[provider.key_field or "key_id"] = config.key_id
    record |= provider.extra_fields()
    record["_links"] = {"self": {"href": f"/api/security/{provider.collection}/{config.uuid}"}}
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
    problem = "Key protection is unavailable on the following nodes: " + ", ".join(unavailable)
    if config.provider.name == "aws":
        problem = "AWS KMS key protection" + problem[len("Key protection") :]
    state = {"cluster_state": healthy, **_status(healthy, problem)}
    return {
        "state": state,
        config.provider.reachability: _reachability(config.amazon_reachable),
        "ekmip_reachability": nodes,
    }


def _reachability(reachable: bool, **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "reachable": reachable,
        **_status(reachable, "Unable to reach the key service"),
    }


def _status(ok: bool, problem: str) -> dict[str, str]:
    return {"code": "0", "message": ""} if ok else {"code": UNREACHABLE_CODE, "message": problem}


Handler = Callable[[Ctx], Awaitable[Response]]


def list_handler(provider: Provider) -> Handler:
    """GET /api/security/<collection>: this provider's configurations."""

    async def handle(ctx: Ctx) -> Response:
        cluster = ctx.cluster
        configs = [c for c in cluster.configs if c.provider is provider]
        return collection(
            ctx, configs, lambda c, adv: kms_record(cluster, c, adv), kms_resource(provider)
        )

    return handle


def get_handler(provider: Provider) -> Handler:
    """GET /api/security/<collection>/{uuid}."""

    async def handle(ctx: Ctx) -> Response:
        config = _config(ctx, provider)
        build = lambda c, adv: kms_record(ctx.cluster, c, adv)  # noqa: E731
        return instance(ctx, config, build, kms_resource(provider))

    return handle


def rekey_handler(provider: Provider, operation: Operation) -> Handler:
    """POST /api/security/<collection>/{uuid}/rekey-<operation>."""

    async def handle(ctx: Ctx) -> Response:
        return await rekey(ctx, provider, operation)

    return handle


def _config(ctx: Ctx, provider: Provider) -> KmsConfig:
    config = ctx.cluster.config_by_uuid.get(ctx.args["uuid"])
    if config is None or config.provider is not provider:
        raise not_found("uuid")
    return config


async def rekey(ctx: Ctx, provider: Provider, operation: Operation) -> Response:
    """POST /api/security/<collection>/{uuid}/rekey-<operation>.

    Order: validate -> drop-before (nothing happened) -> count the attempt -> busy (409,
    code 8, or queued behind the running job) -> synchronous fault or health refusal ->
    create the job -> drop-after (the job runs) -> wait up to return_timeout -> 201/200
    if it ended (always 202 before 9.14), else 202 with the job link.
    """
    config = _config(ctx, provider)
    key_id = _key_id(ctx, provider) if operation == "external" else None
    if operation == "internal":
        _no_body(ctx)
    options = ctx.cluster.policy.options
    wait = ctx.params.return_timeout(options.post_return_timeout_default)
    _maybe_http_error(ctx, config)
    if config.rate_hit("drop_before"):
        raise DropConnection("dropped before the rekey took effect")
    config.attempts += 1
    job = _accept(ctx, config, key_id, operation)
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


def _accept(ctx: Ctx, config: KmsConfig, key_id: str | None, operation: Operation) -> Job:
    cluster = ctx.cluster
    busy = config.running is not None and not config.running.settled
    if busy and cluster.policy.options.busy_rekey == "conflict":
        config.refusals[str(BUSY_CODE)] += 1
        raise ApiError(409, BUSY_CODE, "resource in use: a rekey of this key store is running")
    failure = _failure(ctx, config, operation)
    return cluster.start_rekey(config, key_id, failure, ctx.now, operation)


def _failure(ctx: Ctx, config: KmsConfig, operation: Operation) -> Failure | None:
    """The failure a job will end with (None: success); raises a synchronous refusal."""
    fault = config.active_fault(config.attempts, ctx.cluster.timebase.elapsed(ctx.now))
    if fault is not None:
        if fault.path == "sync":
            config.refusals[str(fault.code_for(config.provider))] += 1
            code = fault.code_for(config.provider)
            raise ApiError(fault.http_status, code, fault.text)
        return Failure(fault.code_for(config.provider), fault.text)
    health = ctx.cluster.health_failure(config, operation)
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


def _key_id(ctx: Ctx, provider: Provider) -> str:
    """The external rekey's key (AWS/Azure `key_id`, GCP `key_name`), validated."""
    data = json_body(ctx.body)
    field = provider.key_field or "key_id"
    allowed = {field} | provider.optional_fields
    if not ctx.cluster.personality.rekey_answers_201:
        allowed |= LEGACY_BODY_FIELDS
    for name in sorted(set(data) - allowed):
        raise unexpected_argument(name)
    key_id = data.get(field)
    if key_id is None:
        raise missing_value(field)
    if not isinstance(key_id, str) or not key_id.strip():
        raise invalid_value(field)
    if provider.name == "gcp" and "/" in key_id:
        message = 'The character "/" is not allowed in the key_name.'
        raise ApiError(400, SLASH_IN_KEY_NAME_CODE, message, target="key_name")
    return key_id


def _no_body(ctx: Ctx) -> None:
    """rekey-internal takes no body (an empty object is accepted)."""
    for name in sorted(json_body(ctx.body)):
        raise unexpected_argument(name)
