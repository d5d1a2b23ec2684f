"""A lean HTTP/1.1 transport for httpx: one keep-alive pool per cluster on asyncio.

httpx stays the API (`OntapHttpClient`, `httpx.Request`/`Response`, its exceptions); this
replaces httpcore underneath. Measured at fleet scale, httpcore on anyio's TLS stream
cost ~1.2 ms of CPU per request (locks, shields and cancel scopes per request, anyio's
pure-Python TLS record layer, h11's event objects); this transport keeps one
`asyncio.Protocol` per connection, asyncio's own TLS transport, and `httptools` (the
llhttp parser that uvicorn uses) to read responses: see docs/performance.md.

What matters for safety is the exception each failure becomes, because the ONTAP client
decides from it whether a POST may have reached the cluster
(`ontap/client.py::_transport_error`):

- `httpx.ConnectError` / `ConnectTimeout` / `PoolTimeout` ("never sent") only before a
  single byte of the request was handed to the socket: a refused or failed connection, a
  TLS handshake failure (the `ssl` error chained as the cause), no free connection;
- once the request is written, everything is "sent": `ReadTimeout`, `WriteTimeout`,
  `ReadError` (the connection dropped), `RemoteProtocolError` (closed before a complete
  response, or a response that is not HTTP/1.1).

A pooled connection the server has closed while idle is noticed (`connection_lost`)
before it is reused; one the server closes at the same moment the request goes out is
"sent", exactly as with httpcore: idle connections expire (`keepalive_expiry`) before a
typical server keep-alive timeout so this is rare.

TLS sessions are resumed per origin (scheme, host, port, server name: a session is never
offered to another cluster): the newest connection that has read its first response (TLS
1.3 sends the ticket after the handshake) holds the session the next connection to that
origin offers, through a `ResumingContext`; it is read from that connection only when a
new connection needs it, or when the connection is closed while the cluster is in use
(reading one costs ~0.5 ms of CPU: CPython copies it through its DER encoding, the peer's
certificate included), not after every new connection's first response. A server that
refuses it gets a full handshake (OpenSSL falls back by itself); a resumed session was
verified, certificate and host name, in the full handshake it came from, and only that
server can accept it.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import math
import os
import ssl
import sys
import time
from collections import Counter, deque
from contextvars import ContextVar
from typing import Any, cast

import anyio
import httptools
import httpx

# asyncio's TLS transport allocates a read buffer of `SSLProtocol.max_size` (256 KiB) per
# connection up front: ~5 connections per cluster x thousands of clusters made that the
# largest part of the run's memory. ONTAP's answers are a few KB; a 16 KiB buffer (one
# TLS record) reads them in a few calls. Lowered, never raised, for the whole process.
_TLS_READ_BUFFER = 16 * 1024
_tls = asyncio.sslproto.SSLProtocol
_tls.max_size = min(_tls.max_size, _TLS_READ_BUFFER)


Origin = tuple[str, str, int, str | None]
"""(scheme, host, port, server_hostname): where a TLS session may be offered again."""

HANDSHAKES: Counter[str] = Counter()
"""TLS handshakes of this process by kind, "full" or "resumed" (every transport's)."""

_OFFER: ContextVar[ssl.SSLSession | None] = ContextVar("ontap_rekey_tls_offer", default=None)


class ResumingContext(ssl.SSLContext):
    """A client context whose new connections offer the session the transport chose.

    asyncio's TLS transport builds its `SSLObject` with `context.wrap_bio(...)` inside
    `loop.create_connection`, which has no `session=` argument: the transport sets the
    session to offer in a context variable of the connecting task for that call.
    """

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        offer = _OFFER.get() if session is None and not server_side else None
        if offer is not None:
            try:
                return super().wrap_bio(incoming, outgoing, server_side, server_hostname, offer)
            except ValueError:  # a session of another context: never offered, never fatal
                pass
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


def resuming_context(cafile: str | None = None) -> ResumingContext:
    """`ssl.create_default_context(cafile=cafile)` (client side), as a `ResumingContext`:
    verification and host name checking on, the system trust store without `cafile`.
    `tests/test_transport_tls.py` compares every setting with the standard library's."""
    context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    if sys.version_info >= (3, 13):  # what create_default_context adds from 3.13 on
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    if cafile:
        context.load_verify_locations(cafile)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:  # as the standard library does
        context.keylog_filename = keylog
    return context


class _Dropped(Exception):
    """The connection ended before a complete response (the reason in the message)."""


class _NotSent(Exception):
    """The connection was found closed before any byte of the request was written."""


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: one request at a time, a response parser."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser: Any = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._complete = False
        self._keep_alive = False
        self._read_until_close = False
        self._has_length = False
        self._encoded = False
        self.closed = False
        self.idle_since = 0.0
        self.origin: Origin | None = None  # until its first response (then its session counts)
        self.tls_origin: Origin | None = None  # the origin of its resumable TLS session

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def ssl_object(self) -> ssl.SSLObject | None:
        if self._transport is None:
            return None
        return cast("ssl.SSLObject | None", self._transport.get_extra_info("ssl_object"))

    def data_received(self, data: bytes) -> None:
        if self._parser is None:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # no request of ours asks for an upgrade
            self._fail(httpx.RemoteProtocolError("unexpected protocol upgrade"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed HTTP response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._read_until_close and self._parser is not None and not self._complete:
            self.on_message_complete()  # a body delimited by the end of the connection
            return
        reason = f"{type(exc).__name__}: {exc}" if exc is not None else "closed by the server"
        self._fail(_Dropped(reason))
        if self._writable is not None and not self._writable.done():
            self._writable.set_exception(_Dropped(reason))

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # -- httptools callbacks ---------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        names = {name.lower() for name, _ in self._headers}
        self._has_length = b"content-length" in names
        self._encoded = b"content-encoding" in names
        self._read_until_close = (
            not self._has_length
            and b"transfer-encoding" not in names
            and self._status >= 200
            and self._status not in (204, 304)
        )

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:  # 1xx (e.g. 100 Continue): the real response follows
            self._headers, self._body, self._status = [], [], 0
            return
        self._complete = True
        self._keep_alive = bool(self._parser.should_keep_alive()) and not self.closed
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- one request -----------------------------------------------------------------

    async def exchange(
        self,
        request: httpx.Request,
        head: bytes,
        body: bytes,
        read_timeout: float | None,
        write_timeout: float | None,
    ) -> tuple[httpx.Response, bool]:
        """Send one request and read its response: (the response, keep-alive)."""
        assert self._transport is not None
        loop = asyncio.get_running_loop()
        self._parser = httptools.HttpResponseParser(self)
        self._status, self._headers, self._body = 0, [], []
        self._complete = self._read_until_close = False
        self._waiter = loop.create_future()
        if self.closed:  # closed by the server after it was chosen: nothing written yet
            raise _NotSent("the connection closed before the request was sent")
        self._transport.write(head + body)
        try:
            if self._writable is not None:
                await _bounded(self._writable, write_timeout, httpx.WriteTimeout)
            await _bounded(self._waiter, read_timeout, httpx.ReadTimeout)
            content = b"".join(self._body)
            response = _response(
                self._status, self._headers, content, request, self._has_length, self._encoded
            )
            return response, self._keep_alive
        finally:
            self._parser = None  # bytes after the response are unsolicited: close on them

    def _fail(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()


async def _bounded(
    future: asyncio.Future[None], timeout: float | None, error: type[httpx.TimeoutException]
) -> None:
    """Wait for `future` at most `timeout` s (httpx's timeouts: None waits forever)."""
    if timeout is None:
        await future
        return
    handle = asyncio.get_running_loop().call_later(timeout, _expire, future, error)
    try:
        await future
    finally:
        handle.cancel()


def _expire(future: asyncio.Future[None], error: type[httpx.TimeoutException]) -> None:
    if not future.done():
        future.set_exception(error("timed out"))


class ClusterTransport(httpx.AsyncBaseTransport):
    """Keep-alive HTTP/1.1 connections to one cluster's management address."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None, limits: httpx.Limits) -> None:
        self._ssl_context = ssl_context
        self._max_idle = limits.max_keepalive_connections or 0
        self._expiry = math.inf if limits.keepalive_expiry is None else limits.keepalive_expiry
        self._slots = anyio.Semaphore(limits.max_connections or 1_000_000)
        self._idle: deque[_Connection] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False
        self._sessions: dict[Origin, ssl.SSLSession] = {}  # read, to offer
        self._fresh: dict[Origin, _Connection] = {}  # the newest one's session: not read yet
        self.handshakes: Counter[str] = Counter()  # "full" / "resumed", this cluster's

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        head, body = await _serialise(request)
        await self._acquire_slot(request, timeouts.get("pool"))
        try:
            connection = self._take_idle() or await self._connect(request, timeouts)
            try:
                response, keep_alive = await self._exchange(
                    connection, request, head, body, timeouts
                )
            except BaseException:  # closed by `_exchange`: its session is not worth reading
                self._forget(connection)
                raise
        finally:
            self._slots.release()
        if connection.origin is not None:  # a new TLS connection's first response: the
            self._fresh[connection.origin] = connection  # newest session (a resumed
            connection.origin = None  # connection brings a fresh ticket too), read when needed
        self._give_back(connection, keep_alive)
        return response

    def _session_to_offer(self, origin: Origin) -> ssl.SSLSession | None:
        """The session a new connection to `origin` offers: the newest connection's."""
        fresh = self._fresh.pop(origin, None)
        if fresh is not None:
            self._keep_session(fresh, origin)
        return self._sessions.get(origin)

    def _retire(self, connection: _Connection, *, keep_session: bool = True) -> None:
        """Close a connection; its session is read first when it is the newest one
        (unless `keep_session` is False: the cluster has gone quiet, or the pool closes)."""
        origin = connection.tls_origin
        if origin is not None and self._fresh.get(origin) is connection:
            del self._fresh[origin]
            if keep_session:
                self._keep_session(connection, origin)
        connection.close()

    def _forget(self, connection: _Connection) -> None:
        if (
            connection.tls_origin is not None
            and self._fresh.get(connection.tls_origin) is connection
        ):
            del self._fresh[connection.tls_origin]

    def _keep_session(self, connection: _Connection, origin: Origin) -> None:
        """Keep the connection's TLS session for the next connections to its origin."""
        ssl_object = connection.ssl_object()
        session = ssl_object.session if ssl_object is not None else None
        if session is not None and session.has_ticket:
            self._sessions[origin] = session

    async def _exchange(
        self,
        connection: _Connection,
        request: httpx.Request,
        head: bytes,
        body: bytes,
        timeouts: dict[str, float | None],
    ) -> tuple[httpx.Response, bool]:
        # From here on the request may have reached the cluster: only "sent" exceptions.
        try:
            read, write = timeouts.get("read"), timeouts.get("write")
            return await connection.exchange(request, head, body, read, write)
        except httpx.TransportError as exc:
            connection.close()
            exc.request = request
            raise
        except _NotSent as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        except _Dropped as exc:
            connection.close()
            message = f"server disconnected without sending a complete response ({exc})"
            raise httpx.RemoteProtocolError(message, request=request) from None
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            connection.close()
            raise

    async def _acquire_slot(self, request: httpx.Request, timeout: float | None) -> None:
        try:
            self._slots.acquire_nowait()  # the usual case, without a cancel scope
            return
        except anyio.WouldBlock:
            pass
        try:
            with anyio.fail_after(timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection", request=request) from None

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the least likely expired
            if not connection.closed and now - connection.idle_since < self._expiry:
                return connection
            self._retire(connection)
        return None

    def _give_back(self, connection: _Connection, keep_alive: bool) -> None:
        if not keep_alive or self._closed or len(self._idle) >= self._max_idle:
            self._retire(connection, keep_session=not self._closed)
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)
        if self._sweep is None and math.isfinite(self._expiry):
            self._sweep = asyncio.get_running_loop().call_later(self._expiry, self._close_expired)

    def _close_expired(self) -> None:
        """Close the idle connections past their expiry. A cluster whose targets are done
        is never asked again: without this its connections (~50 KB of TLS state each)
        would stay open until the run ends, ~5 per cluster of a fleet of thousands."""
        self._sweep = None
        now = time.monotonic()
        while self._idle and (
            self._idle[0].closed or now - self._idle[0].idle_since >= self._expiry
        ):
            # the oldest first (the deque is in idle order); a quiet cluster's newest
            # session is not read: the one read before is offered if it is asked again
            self._retire(self._idle.popleft(), keep_session=False)
        if self._idle:
            wait = self._expiry - (now - self._idle[0].idle_since)
            self._sweep = asyncio.get_running_loop().call_later(wait, self._close_expired)

    async def _connect(
        self, request: httpx.Request, timeouts: dict[str, float | None]
    ) -> _Connection:
        url = request.url
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        tls = self._ssl_context if url.scheme == "https" else None
        origin: Origin = (url.scheme, host, port, host if tls else None)
        loop = asyncio.get_running_loop()
        offer = _OFFER.set(self._session_to_offer(origin) if tls is not None else None)
        try:
            with anyio.fail_after(timeouts.get("connect")):
                _, connection = await loop.create_connection(
                    _Connection, host, port, ssl=tls, server_hostname=origin[3]
                )
        except TimeoutError:
            raise httpx.ConnectTimeout("connect timed out", request=request) from None
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, TLS handshake
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        finally:
            _OFFER.reset(offer)
        if tls is not None:
            self._count_handshake(connection, origin)
        return connection

    def _count_handshake(self, connection: _Connection, origin: Origin) -> None:
        ssl_object = connection.ssl_object()
        kind = "resumed" if ssl_object is not None and ssl_object.session_reused else "full"
        self.handshakes[kind] += 1
        HANDSHAKES[kind] += 1
        if isinstance(self._ssl_context, ResumingContext):
            connection.origin = connection.tls_origin = origin  # (counts after a response)

    async def aclose(self) -> None:
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._fresh.clear()
        while self._idle:
            self._idle.pop().close()


async def _serialise(request: httpx.Request) -> tuple[bytes, bytes]:
    try:
        body = request.content  # httpx's `build_request` has read it already
    except httpx.RequestNotRead:
        body = await request.aread()
    lines = [request.method.encode("ascii") + b" " + request.url.raw_path + b" HTTP/1.1"]
    lines += [name + b": " + value for name, value in request.headers.raw]
    lines.append(b"\r\n")
    return b"\r\n".join(lines), body


def _response(
    status: int,
    headers: list[tuple[bytes, bytes]],
    content: bytes,
    request: httpx.Request,
    has_length: bool,
    encoded: bool,
) -> httpx.Response:
    """The response `httpx.Response(status, headers=..., content=...)` builds, already
    read, without reading it again.

    httpx reads a `content=` body through its decoder, chunker and stream generators (with
    a context manager per layer) to arrive at the same bytes; a body without a
    Content-Encoding is the bytes httptools gave. Setting the read state directly leans
    on an httpx internal (`Response._content`, where `read()` keeps the body); without it, or
    for an encoded body, httpx reads it as before. `tests/test_transport.py::
    test_the_lean_response_is_the_response_httpx_builds` fails if that state changes.
    """
    if content and not has_length:  # httpx adds it for a `content=` body (chunked, EOF)
        headers.append((b"Content-Length", str(len(content)).encode("ascii")))
    if encoded or not _LEAN_RESPONSES:
        return httpx.Response(
            status, headers=headers, content=content, request=request, extensions=_HTTP11
        )
    response = httpx.Response(
        status,
        headers=headers,
        stream=httpx.ByteStream(content),
        request=request,
        extensions=_HTTP11,
    )
    response._content = content  # what `read()` stores (num_bytes_downloaded stays 0, too)
    response.is_stream_consumed = True
    response.is_closed = True
    return response


_HTTP11 = {"http_version": b"HTTP/1.1"}  # copied by Response: shared safely


def _responses_keep_their_read_state() -> bool:
    probe = httpx.Response(200, content=b"x").__dict__
    return probe.get("_content") == b"x"


_LEAN_RESPONSES = _responses_keep_their_read_state()
