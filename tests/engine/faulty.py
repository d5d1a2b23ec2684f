"""Transports around the in-process simulator that change what a cluster says, for the
variants today's simulator has no switch for (a test helper, not a test module)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from orchestrator.core.inventory import ClusterSpec
from orchestrator.simulator.transport import SimulatorTransport
from tests.simfleet import SimFleet

Hook = Callable[[httpx.Request], httpx.Response | None]


class Rewriting(httpx.AsyncBaseTransport):
    """The simulator, with job descriptions reworded (and filtered on the new wording),
    key stores without `state` (ONTAP before 9.16.1), and an optional hook that may
    answer a request itself."""

    def __init__(
        self,
        inner: SimulatorTransport,
        *,
        description: Callable[[str], str] | None = None,
        no_key_store_state: bool = False,
        hook: Hook | None = None,
    ) -> None:
        self.inner = inner
        self.description = description
        self.no_key_store_state = no_key_store_state
        self.hook = hook

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.hook is not None and (answer := self.hook(request)) is not None:
            return answer
        wanted = None
        if self.description is not None and request.url.path == "/api/cluster/jobs":
            wanted = request.url.params.get("description")
            request.url = request.url.copy_remove_param("description")
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if "json" not in response.headers.get("content-type", ""):
            return response
        body = json.loads(response.content or b"null")
        body = self._rewrite(request.url.path, body, wanted)
        return httpx.Response(response.status_code, json=body, headers=_plain(response))

    def _rewrite(self, path: str, body: Any, wanted: str | None) -> Any:
        if self.description is not None and isinstance(body, dict):
            body = _reword(body, self.description)
            if wanted is not None and isinstance(body.get("records"), list):
                body["records"] = [r for r in body["records"] if r.get("description") == wanted]
                body["num_records"] = len(body["records"])
        if self.no_key_store_state and path.startswith("/api/security/key-stores"):
            for record in body.get("records", []) if isinstance(body, dict) else []:
                record.pop("state", None)
        return body

    async def aclose(self) -> None:
        await self.inner.aclose()


def _reword(body: dict[str, Any], wording: Callable[[str], str]) -> dict[str, Any]:
    def fix(record: Any) -> Any:
        if isinstance(record, dict) and isinstance(record.get("description"), str):
            record["description"] = wording(record["description"])
        return record

    fix(body)
    fix(body.get("job"))
    for record in body.get("records", []) if isinstance(body.get("records"), list) else []:
        fix(record)
    return body


def _plain(response: httpx.Response) -> dict[str, str]:
    keep = ("retry-after",)
    return {k: v for k, v in response.headers.items() if k.lower() in keep}


def rewriting(sim: SimFleet, **kw: Any) -> Callable[[ClusterSpec], httpx.AsyncBaseTransport]:
    """A transport factory for `Wiring` (one Rewriting per cluster, sharing `kw`)."""
    return lambda _spec: Rewriting(SimulatorTransport(sim.app), **kw)
