"""In-process access to the simulator through httpx, with dropped connections made real.

`SimulatorTransport(app)` wraps `httpx.ASGITransport` and only translates the simulator's
signals into what a client would see on a socket: `DropConnection` becomes
`httpx.RemoteProtocolError` ("server disconnected without sending a response") and
`ClusterUnreachable` becomes `httpx.ConnectError`.
"""

from __future__ import annotations

import httpx

from orchestrator.simulator.app import SimulatorApp
from orchestrator.simulator.errors import ClusterUnreachable, DropConnection


class SimulatorTransport(httpx.AsyncBaseTransport):
    """An httpx transport that serves requests from a SimulatorApp in-process."""

    def __init__(self, app: SimulatorApp) -> None:
        self.app = app
        self._inner = httpx.ASGITransport(app=app)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Serve one request; a dropped connection raises what a socket would."""
        try:
            return await self._inner.handle_async_request(request)
        except ClusterUnreachable as exc:
            raise httpx.ConnectError("All connection attempts failed", request=request) from exc
        except DropConnection as exc:
            message = "Server disconnected without sending a response."
            raise httpx.RemoteProtocolError(message, request=request) from exc

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()
