"""Requests, responses and the collection/instance helpers every route shares."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from orchestrator.simulator.errors import INVALID_JSON_CODE, INVALID_JSON_TYPE_CODE, ApiError
from orchestrator.simulator.query import (
    DEFAULT_GET_RETURN_TIMEOUT,
    Params,
    Resource,
    compile_filters,
    matches,
    needs_advanced,
    order,
    page,
    project,
    selection,
)

if TYPE_CHECKING:
    from orchestrator.simulator.cluster import ClusterState
    from orchestrator.simulator.fleet import Fleet

T = TypeVar("T")
Builder = Callable[[T, bool], dict[str, Any]]


@dataclass
class Response:
    """What a route answers: a status, a JSON body (or none), extra headers."""

    status: int
    body: dict[str, Any] | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Ctx:
    """Everything a route handler needs about one request."""

    fleet: Fleet
    cluster: ClusterState
    method: str
    path: str
    params: Params
    body: bytes
    args: dict[str, str]
    now: float
    scope: MutableMapping[str, Any]


Handler = Callable[[Ctx], Awaitable[Response]]


def collection(ctx: Ctx, items: Iterable[T], build: Builder[T], resource: Resource) -> Response:
    """A collection GET: filter, order, page, then project each record."""
    chosen = selection(ctx.params, resource, collection=True)
    advanced = chosen.advanced or needs_advanced(ctx.params, resource)
    filters = compile_filters(ctx.params, resource)
    records = [r for r in (build(item, advanced) for item in items) if matches(r, filters)]
    order(records, ctx.params, resource)
    options = ctx.cluster.policy.options
    body = page(
        records,
        ctx.params,
        ctx.path,
        trailing_empty=options.trailing_empty_page,
        record_cost_s=options.record_cost_s,
    )
    body["records"] = [_shape(r, chosen.paths, resource, chosen.advanced) for r in body["records"]]
    return Response(200, body)


def instance(ctx: Ctx, item: T, build: Builder[T], resource: Resource) -> Response:
    """An instance GET: the record projected to `fields=` (all defaults without it)."""
    ctx.params.return_timeout(DEFAULT_GET_RETURN_TIMEOUT)  # validated (0..120), nothing to cut
    chosen = selection(ctx.params, resource, collection=False)
    record = build(item, chosen.advanced)
    return Response(200, _shape(record, chosen.paths, resource, chosen.advanced))


def _shape(
    record: dict[str, Any], paths: tuple[str, ...] | None, resource: Resource, advanced: bool
) -> dict[str, Any]:
    if paths is None and not advanced:
        # built with advanced fields only to filter on them: they are still not returned
        return {k: v for k, v in record.items() if k not in resource.advanced}
    return project(record, paths)


def json_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object (none: `{}`); ONTAP's 400 for invalid JSON."""
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, INVALID_JSON_CODE, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        message = "The request body must be a JSON object."
        raise ApiError(400, INVALID_JSON_TYPE_CODE, message)
    return data
