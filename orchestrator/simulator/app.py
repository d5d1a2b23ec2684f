"""The simulator as a plain ASGI 3 application: one app, a whole fleet.

The cluster a request is for is found by the address the server accepted it on
(`scope["server"]`, bound with `Fleet.bind`). Per request: count it, shed load past the
cluster's limit, authenticate, add scenario latency, maybe answer a scenario 5xx, then
route. Everything outside `/api` is the simulator's own (`/_sim/stats`, `/_sim/reset`).
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import anyio

from orchestrator.simulator import router
from orchestrator.simulator.auth import authenticate
from orchestrator.simulator.cluster import ClusterState
from orchestrator.simulator.errors import (
    METHOD_NOT_ALLOWED_CODE,
    NOT_FOUND_CODE,
    ApiError,
    ClusterUnreachable,
    DropConnection,
    http_error,
)
from orchestrator.simulator.fleet import Fleet
from orchestrator.simulator.http import Ctx, Response
from orchestrator.simulator.query import Params
from orchestrator.simulator.routes_kms import retry_after
from orchestrator.simulator.timebase import Clock

API_NOT_FOUND = "API not found"
DROPPED = 0  # the status recorded for a connection the simulator dropped
_OVERLOAD = {
    "429": (429, 262160, "Too many requests. Retry after a short delay."),
    "503": (503, 7, "Resource limit exceeded. Retry later."),
}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


class SimulatorApp:
    """ASGI application serving every cluster of `fleet`.

    `clock`, when given, becomes the fleet's clock (job progress, expiry, time-boxed
    faults), so tests can move time without waiting.
    """

    def __init__(self, fleet: Fleet, *, clock: Clock | None = None) -> None:
        self.fleet = fleet
        if clock is not None:
            fleet.use_clock(clock)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            body = await _read_body(receive)
            response = await self.handle(scope, body)
            await _send(send, response)

    async def handle(self, scope: Scope, body: bytes) -> Response:
        """Answer one HTTP request (raises DropConnection when the scenario says so)."""
        path: str = scope["path"]
        if path.startswith("/_sim/"):
            return self._sim(scope["method"], path)
        cluster = self.fleet.cluster_at(scope.get("server"))
        if cluster is None:
            return _error(ApiError(404, 4, f"No simulated cluster at {scope.get('server')}."))
        if cluster.unreachable:
            raise ClusterUnreachable(cluster.name)
        found = router.match(path)
        template = found[0].template if found else path
        status = DROPPED
        cluster.in_flight += 1
        cluster.peak_requests = max(cluster.peak_requests, cluster.in_flight)
        try:
            response = await self._serve(cluster, scope, body, found)
            status = response.status
            return response
        finally:
            cluster.in_flight -= 1
            cluster.requests[(scope["method"], template, status)] += 1

    async def _serve(
        self,
        cluster: ClusterState,
        scope: Scope,
        body: bytes,
        found: tuple[router.Route, dict[str, str]] | None,
    ) -> Response:
        try:
            _shed_load(cluster)
            authenticate(cluster, scope, _header(scope, b"authorization"))
            await _delay(cluster)
            _maybe_http_error(cluster)
            return await self._route(cluster, scope, body, found)
        except ApiError as error:
            return _error(error)

    async def _route(
        self,
        cluster: ClusterState,
        scope: Scope,
        body: bytes,
        found: tuple[router.Route, dict[str, str]] | None,
    ) -> Response:
        now = self.fleet.timebase.now()
        cluster.settle(now)
        if found is None or not cluster.personality.at_least(found[0].since):
            raise ApiError(404, NOT_FOUND_CODE, API_NOT_FOUND)
        route, args = found
        handler = route.methods.get(scope["method"])
        if handler is None:
            message = f"The method {scope['method']} is not allowed on this API."
            raise ApiError(405, METHOD_NOT_ALLOWED_CODE, message)
        params = Params(_query(scope))
        ctx = Ctx(
            self.fleet, cluster, scope["method"], scope["path"], params, body, args, now, scope
        )
        return await handler(ctx)

    def _sim(self, method: str, path: str) -> Response:
        if path == "/_sim/stats" and method == "GET":
            return Response(200, self.fleet.stats())
        if path == "/_sim/reset" and method == "POST":
            self.fleet.reset()
            return Response(200, {})
        return _error(ApiError(404, NOT_FOUND_CODE, API_NOT_FOUND))


def _shed_load(cluster: ClusterState) -> None:
    policy = cluster.policy
    if cluster.in_flight <= policy.max_concurrent_requests:
        return
    choice = policy.overload.choose(cluster.rng)
    if choice == "drop":
        raise DropConnection("over the concurrent request limit")
    status, code, message = _OVERLOAD[choice]
    # Retry-After is documented for 429; a 503 carries it only with `retry_after_on_503`
    seconds = policy.options.retry_after_s if status == 429 else retry_after(cluster, status)
    retry = [] if seconds is None else [("retry-after", str(seconds))]
    raise ApiError(status, code, message, headers=retry)


async def _delay(cluster: ClusterState) -> None:
    policy = cluster.policy
    seconds = policy.latency.draw(cluster.rng) if policy.latency else 0.0
    for fault in policy.rate_faults:
        if fault.kind == "slow" and cluster.rng.random() < fault.rate:
            seconds += fault.delay_s
    if seconds > 0:
        await anyio.sleep(seconds)


def _maybe_http_error(cluster: ClusterState) -> None:
    for fault in cluster.policy.rate_faults:
        if (
            fault.kind == "http_errors"
            and fault.requests == "all"
            and cluster.rng.random() < fault.rate
        ):
            status = cluster.rng.choice(fault.statuses)
            raise http_error(status, retry_after(cluster, status))


def _error(error: ApiError) -> Response:
    return Response(error.status, error.body(), list(error.headers))


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return ""


def _query(scope: Scope) -> list[tuple[str, str]]:
    raw = scope.get("query_string") or b""
    return parse_qsl(raw.decode("latin-1"), keep_blank_values=True) if raw else []


async def _read_body(receive: Any) -> bytes:
    chunks = []
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send(send: Any, response: Response) -> None:
    payload = b"" if response.body is None else json.dumps(response.body).encode()
    headers = [
        (b"content-type", b"application/hal+json"),
        (b"content-length", b"%d" % len(payload)),
    ]
    headers += [(k.encode(), v.encode()) for k, v in response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
