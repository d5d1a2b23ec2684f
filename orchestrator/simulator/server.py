"""A small HTTP/1.1 server (asyncio + h11) that hosts one ASGI app on many sockets.

The simulator serves a whole fleet from one process: one listening socket per cluster
(a distinct port on 127.0.0.1, or a distinct 127.x.y.z address), each optionally with its
own `ssl.SSLContext` (its own certificate), all dispatching to one ASGI application that
tells the clusters apart by `scope["server"]`, the address of the *listening* socket.

Why not uvicorn: it cannot drop a connection on cue (the simulator must abort the TCP
connection without a byte of response when the app raises `DropConnection`), and it binds
one socket per server with one TLS context, so thousands of listeners each with its own
certificate would mean thousands of server objects and their machinery. Here a listener
is one `loop.create_server()` call and a connection is one `asyncio.Protocol` with an
`h11.Connection`; a request costs one task.

What it implements: HTTP/1.1 keep-alive (one request at a time per connection, pipelined
requests wait in h11's buffer), `Content-Length` and chunked request bodies (handed to the
app in one `http.request` message), responses with `Content-Length` or chunked, the ASGI 3
HTTP scope (with `extensions["tls"]["client_cert_cn"]`, the verified client certificate's
subject CN), a 500 when the app fails before it responded, and a graceful `aclose()`.
It runs on asyncio only (anyio's asyncio backend included). No lifespan, no websockets.

The second half of the module serves a simulated fleet: one listener per cluster (TLS from
`orchestrator.simulator.tls`), `start_fleet_server()` for an event loop of one's own, and
`running_simulator()`, which runs it all in a background thread for synchronous clients
(NetApp's `netapp-ontap`), tests and benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import h11
import structlog
from anyio.abc import TaskStatus

from orchestrator.simulator.app import SimulatorApp
from orchestrator.simulator.errors import DropConnection
from orchestrator.simulator.fleet import Fleet, FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.tls import ClientCert, FleetTls, peer_common_name

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")

DEFAULT_BACKLOG = 512
DEFAULT_SHUTDOWN_TIMEOUT_S = 5.0
MAX_INCOMPLETE_EVENT_SIZE = 64 * 1024  # request line + headers
SERVER_HEADER = (b"server", b"ontap-rekey-simulator")
INTERNAL_ERROR_BODY = (
    b'{"error": {"message": "simulator internal error", "code": "1", "target": ""}}'
)

logger = structlog.get_logger("orchestrator.simulator.server")


@dataclass(frozen=True)
class Listener:
    """Where to listen. `port=0` lets the OS choose; `refuse=True` holds the address
    (bound, never listening) so that connections to it are refused: an unreachable cluster.
    """

    host: str
    port: int = 0
    ssl_context: ssl.SSLContext | None = None
    refuse: bool = False


@dataclass(frozen=True)
class BoundAddress:
    """Where a listener ended up: the real port, and the base URL to reach it."""

    host: str
    port: int
    scheme: str
    listening: bool = True

    @property
    def url(self) -> str:
        """`scheme://host:port`, with IPv6 addresses in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass
class _Cycle:
    """One request/response exchange on a connection, seen from the ASGI side."""

    scope: Scope
    body: list[bytes] = field(default_factory=list)
    body_complete: bool = False
    body_delivered: bool = False
    response_started: bool = False
    response_complete: bool = False
    disconnected: bool = False
    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


class _HttpProtocol(asyncio.Protocol):
    """One client connection: h11 parses, the ASGI app answers one request at a time."""

    def __init__(self, server: FleetServer, bound: BoundAddress) -> None:
        self._server = server
        self._bound = bound
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_INCOMPLETE_EVENT_SIZE)
        self._transport: asyncio.Transport | None = None
        self._base_scope: Scope = {}
        self._cycle: _Cycle | None = None
        self._closing = False

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Remember the transport and precompute the per-connection part of the scope."""
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._server._connections.add(self)
        self._base_scope = self._connection_scope(transport)

    def data_received(self, data: bytes) -> None:
        """Feed h11 and act on every complete event."""
        self._conn.receive_data(data)
        self._handle_events()

    def eof_received(self) -> bool | None:
        """The client half-closed: let h11 see it (it ends the connection cleanly)."""
        self._conn.receive_data(b"")
        self._handle_events()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake a running app so that its `receive()` reports `http.disconnect`."""
        self._server._connections.discard(self)
        self._closing = True
        if self._cycle is not None:
            self._cycle.disconnected = True
            self._cycle.wakeup.set()

    # -- requests ------------------------------------------------------------------------

    def _handle_events(self) -> None:
        while not self._closing:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError:
                self._reject_bad_request()
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                self._pause()
                return
            self._dispatch(event)

    def _dispatch(self, event: object) -> None:
        if isinstance(event, h11.Request):
            self._start_cycle(event)
        elif isinstance(event, h11.Data) and self._cycle is not None:
            self._cycle.body.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage) and self._cycle is not None:
            self._cycle.body_complete = True
            self._cycle.wakeup.set()
        elif isinstance(event, h11.ConnectionClosed):
            self._close()

    def _start_cycle(self, request: h11.Request) -> None:
        scope = self._request_scope(request)
        cycle = self._cycle = _Cycle(scope=scope)
        task = asyncio.get_running_loop().create_task(self._run_app(cycle))
        self._server._tasks.add(task)
        task.add_done_callback(self._server._tasks.discard)

    def _pause(self) -> None:
        # A pipelined request waits until the current response is complete.
        if self._transport is not None and self._transport.is_reading():
            self._transport.pause_reading()

    def _reject_bad_request(self) -> None:
        if self._conn.our_state in {h11.IDLE, h11.SEND_RESPONSE}:
            self._write_response(400, [(b"content-type", b"text/plain")], b"Bad Request")
        self._close()

    # -- the ASGI side -------------------------------------------------------------------

    async def _run_app(self, cycle: _Cycle) -> None:
        try:
            await self._server.app(
                cycle.scope, lambda: self._receive(cycle), lambda m: self._send(cycle, m)
            )
        except self._server.abort_on:
            self._abort()
            return
        except Exception:
            logger.exception("simulator.app_error", path=cycle.scope.get("path"))
            self._fail(cycle)
            return
        if not cycle.response_complete:
            self._fail(cycle)

    async def _receive(self, cycle: _Cycle) -> Message:
        if not cycle.body_delivered:
            while not (cycle.body_complete or cycle.disconnected):
                cycle.wakeup.clear()
                await cycle.wakeup.wait()
            if not cycle.disconnected:
                cycle.body_delivered = True
                return {"type": "http.request", "body": b"".join(cycle.body), "more_body": False}
        while not (cycle.disconnected or cycle.response_complete):
            cycle.wakeup.clear()
            await cycle.wakeup.wait()
        return {"type": "http.disconnect"}

    async def _send(self, cycle: _Cycle, message: Message) -> None:
        if cycle.disconnected or cycle.response_complete:
            return
        kind = message["type"]
        if kind == "http.response.start" and not cycle.response_started:
            cycle.response_started = True
            cycle.status = int(message["status"])
            cycle.headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
        elif kind == "http.response.body" and cycle.response_started:
            self._send_body(cycle, bytes(message.get("body", b"")), bool(message.get("more_body")))
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")

    def _send_body(self, cycle: _Cycle, body: bytes, more_body: bool) -> None:
        chunks: list[bytes] = []
        if self._conn.our_state is h11.SEND_RESPONSE:
            headers = [SERVER_HEADER, *cycle.headers]
            chunks.append(self._conn.send(h11.Response(status_code=cycle.status, headers=headers)))
        if body:
            chunks.append(self._conn.send(h11.Data(data=body)))
        if not more_body:
            chunks.append(self._conn.send(h11.EndOfMessage()))
            cycle.response_complete = True
            cycle.wakeup.set()
        self._write(b"".join(chunks))
        if cycle.response_complete:
            self._finish_cycle()

    def _fail(self, cycle: _Cycle) -> None:
        """The app failed or returned early: a 500 if nothing was sent yet, else abort."""
        if cycle.response_started or cycle.disconnected:
            self._abort()
            return
        cycle.response_complete = True
        self._write_response(500, [(b"content-type", b"application/json")], INTERNAL_ERROR_BODY)
        self._finish_cycle()

    # -- connection lifecycle ------------------------------------------------------------

    def _finish_cycle(self) -> None:
        """After a response: next request on keep-alive, else close."""
        self._cycle = None
        conn = self._conn
        if (
            self._server.closing
            or conn.our_state is h11.MUST_CLOSE
            or conn.their_state is not h11.DONE
        ):
            self._close()
            return
        conn.start_next_cycle()
        if self._transport is not None and not self._transport.is_reading():
            self._transport.resume_reading()
        self._handle_events()  # a pipelined request may already be buffered

    def _write_response(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        headers = [SERVER_HEADER, *headers, (b"content-length", str(len(body)).encode())]
        with contextlib.suppress(h11.LocalProtocolError):
            self._write(
                self._conn.send(h11.Response(status_code=status, headers=headers))
                + self._conn.send(h11.Data(data=body))
                + self._conn.send(h11.EndOfMessage())
            )

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def _abort(self) -> None:
        """Drop the connection: no response, a reset instead of an orderly close."""
        self._closing = True
        if self._transport is not None:
            self._transport.abort()

    def close_if_idle(self) -> None:
        """Shutdown: close now if no request is in flight (a busy one closes after it)."""
        if self._cycle is None:
            self._close()

    def abort(self) -> None:
        """Shutdown deadline passed: abort whatever is still open."""
        self._abort()

    # -- scope ---------------------------------------------------------------------------

    def _connection_scope(self, transport: asyncio.Transport) -> Scope:
        peer = transport.get_extra_info("peername")
        extensions: dict[str, Any] = {}
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            extensions["tls"] = {
                "client_cert_cn": peer_common_name(ssl_object.getpeercert()),
                "tls_version": ssl_object.version(),
            }
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "scheme": self._bound.scheme,
            "server": (self._bound.host, self._bound.port),
            "client": (str(peer[0]), int(peer[1])) if peer else None,
            "root_path": "",
            "extensions": extensions,
        }

    def _request_scope(self, request: h11.Request) -> Scope:
        raw_path, _, query = bytes(request.target).partition(b"?")
        scope = dict(self._base_scope)
        scope["http_version"] = request.http_version.decode()
        scope["method"] = request.method.decode()
        scope["path"] = _unquote(raw_path)
        scope["raw_path"] = raw_path
        scope["query_string"] = query
        scope["headers"] = [(bytes(name), bytes(value)) for name, value in request.headers]
        return scope


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _unquote(raw_path: bytes) -> str:
    """The percent-decoded path (ASGI's `path`), fast for the common case."""
    text = raw_path.decode("latin-1")
    if "%" not in text:
        return text
    from urllib.parse import unquote

    return unquote(text)


class FleetServer:
    """One ASGI app served on many sockets.

    `start()` binds every listener (in order) and returns where each ended up; `aclose()`
    stops listening, lets in-flight requests finish for up to `shutdown_timeout` seconds,
    then aborts what is left. Exceptions of the types in `abort_on` raised by the app
    abort the connection without a response.
    """

    def __init__(
        self,
        app: ASGIApp,
        listeners: Sequence[Listener],
        *,
        abort_on: tuple[type[BaseException], ...] = (),
        backlog: int = DEFAULT_BACKLOG,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.abort_on = abort_on
        self.closing = False
        self._listeners = tuple(listeners)
        self._backlog = backlog
        self._shutdown_timeout = shutdown_timeout
        self._servers: list[asyncio.Server] = []
        self._held: list[socket.socket] = []  # sockets bound but not listening (refused addresses)
        self._connections: set[_HttpProtocol] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.addresses: list[BoundAddress] = []

    async def start(self) -> list[BoundAddress]:
        """Bind every listener; the result is in the order of the listeners."""
        try:
            for listener in self._listeners:
                self.addresses.append(await self._bind(listener))
        except BaseException:
            await self.aclose()
            raise
        return list(self.addresses)

    async def _bind(self, listener: Listener) -> BoundAddress:
        # Bind first, read the real port back, then serve: the protocol factory needs the
        # address, and a connection may arrive as soon as the server starts.
        sock = _bound_socket(listener.host, listener.port)
        scheme = "https" if listener.ssl_context is not None else "http"
        bound = BoundAddress(listener.host, int(sock.getsockname()[1]), scheme, not listener.refuse)
        if listener.refuse:
            self._held.append(sock)  # bound, never listening: every connect is refused
            return bound
        server = await asyncio.get_running_loop().create_server(
            lambda: _HttpProtocol(self, bound),
            sock=sock,
            ssl=listener.ssl_context,
            backlog=self._backlog,
        )
        self._servers.append(server)
        return bound

    async def aclose(self) -> None:
        """Stop listening, finish in-flight requests (bounded), close every connection."""
        self.closing = True
        for server in self._servers:
            server.close()
        for sock in self._held:
            sock.close()
        for connection in list(self._connections):
            connection.close_if_idle()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._shutdown_timeout)
        for connection in list(self._connections):
            connection.abort()
        for task in list(self._tasks):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
        self._held.clear()

    async def __aenter__(self) -> FleetServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def serve(
    app: ASGIApp,
    listeners: Sequence[Listener],
    *,
    abort_on: tuple[type[BaseException], ...] = (),
    task_status: TaskStatus[list[BoundAddress]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on `listeners` until cancelled; `task_status.started()` gets the addresses."""
    server = FleetServer(app, listeners, abort_on=abort_on)
    addresses = await server.start()
    try:
        task_status.started(addresses)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await server.aclose()


# -- a simulated fleet on loopback ----------------------------------------------------------

SPREAD_PREFIX = (
    "127.1"  # --address-per-cluster: cluster i listens on 127.1.(i // 250).(i % 250 + 1)
)
STATS_PATH = "/_sim/stats"


def cluster_address(index: int, *, host: str, address_per_cluster: bool) -> str:
    """The address cluster number `index` (from 0) listens on."""
    if not address_per_cluster:
        return host
    return f"{SPREAD_PREFIX}.{index // 250}.{index % 250 + 1}"


def fleet_listeners(
    fleet: Fleet,
    *,
    host: str = "127.0.0.1",
    base_port: int = 0,
    tls: FleetTls | None = None,
    address_per_cluster: bool = False,
) -> list[Listener]:
    """One listener per cluster, in fleet order; unreachable clusters refuse connections.

    Ports: `base_port=0` lets the OS choose; otherwise cluster i gets `base_port + i` on a
    shared address, or `base_port` itself on its own address (`address_per_cluster`).
    """
    listeners = []
    for index, cluster in enumerate(fleet.clusters):
        address = cluster_address(index, host=host, address_per_cluster=address_per_cluster)
        port = base_port + index if base_port and not address_per_cluster else base_port
        context = tls.server_context(address) if tls is not None else None
        listeners.append(Listener(address, port, context, refuse=cluster.unreachable))
    return listeners


class Simulation:
    """A fleet served on loopback: its state, its server, where each cluster listens.

    `urls` maps each cluster to its base URL (unreachable ones too: connecting is
    refused); `stats_url` is the ground-truth endpoint on the first reachable cluster;
    `ca_pem_path` is the CA bundle that verifies every cluster (None without TLS).
    """

    def __init__(self, fleet: Fleet, server: FleetServer, tls: FleetTls | None) -> None:
        self.fleet = fleet
        self.server = server
        self.tls = tls
        self.ca_pem_path = tls.ca_pem_path if tls is not None else None
        names = [cluster.name for cluster in fleet.clusters]
        self.addresses = dict(zip(names, server.addresses, strict=True))
        self.urls = {name: address.url for name, address in self.addresses.items()}
        self.unreachable = tuple(n for n, a in self.addresses.items() if not a.listening)
        reachable = [a.url for a in self.addresses.values() if a.listening] or [*self.urls.values()]
        self.stats_url = f"{reachable[0]}{STATS_PATH}" if reachable else ""

    def stats(self) -> dict[str, Any]:
        """GET /_sim/stats (blocking: call it from outside the simulator's event loop)."""
        import httpx

        verify = self.tls.client_context() if self.tls is not None else True
        response = httpx.get(self.stats_url, verify=verify, timeout=10.0)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def issue_client_cert(self, username: str) -> ClientCert:
        """A client certificate (CN = `username`) from the fleet's CA, for cert auth."""
        if self.tls is None:
            raise RuntimeError("client certificates need a simulator started with TLS")
        return self.tls.issue_client_cert(username)

    async def aclose(self) -> None:
        """Stop serving (in-flight requests finish first, within the server's timeout)."""
        await self.server.aclose()


async def start_simulation(
    fleet: Fleet,
    *,
    host: str = "127.0.0.1",
    base_port: int = 0,
    tls: FleetTls | None = None,
    address_per_cluster: bool = False,
) -> Simulation:
    """Serve `fleet` on loopback (one listener per cluster) and bind each cluster to it."""
    listeners = fleet_listeners(
        fleet, host=host, base_port=base_port, tls=tls, address_per_cluster=address_per_cluster
    )
    server = FleetServer(SimulatorApp(fleet), listeners, abort_on=(DropConnection,))
    addresses = await server.start()
    for cluster, address in zip(fleet.clusters, addresses, strict=True):
        fleet.bind(cluster.name, address.host, address.port)
    return Simulation(fleet, server, tls)


class _LoopThread:
    """An asyncio event loop running in a daemon thread, for synchronous callers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="ontap-simulator", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def __enter__(self) -> _LoopThread:
        self._thread.start()
        return self

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def __exit__(self, *exc_info: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.wait(pending))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@contextlib.contextmanager
def running_simulator(
    fleet_spec: FleetSpec,
    scenario: Scenario | None = None,
    *,
    tls: bool = False,
    seed: int = 0,
    base_port: int = 0,
    host: str = "127.0.0.1",
    address_per_cluster: bool = False,
) -> Iterator[Simulation]:
    """Serve a fleet from a background thread for the duration of the `with` block.

    For synchronous clients (`netapp-ontap`), subprocesses, tests and benchmarks. Ports
    come from the OS unless `base_port` is given. With `tls=True` a fresh CA signs every
    cluster's certificate and `ca_pem_path` (in a temporary folder, removed on exit) is
    the bundle that verifies them all.
    """
    with tempfile.TemporaryDirectory(prefix="ontap-sim-") as tmp, _LoopThread() as thread:
        fleet_tls = FleetTls(Path(tmp)) if tls else None

        async def start() -> Simulation:
            fleet = Fleet(fleet_spec, scenario, seed)
            return await start_simulation(
                fleet,
                host=host,
                base_port=base_port,
                tls=fleet_tls,
                address_per_cluster=address_per_cluster,
            )

        simulation = thread.run(start())
        try:
            yield simulation
        finally:
            thread.run(simulation.aclose())
