"""The lean HTTP transport (ontap/transport.py) over real loopback sockets.

What each failure becomes decides whether a POST may have reached ONTAP, so each case is
played by a raw asyncio server doing exactly that on the wire, and asserted both as the
httpx exception and as the ONTAP client's `OntapError` (`maybe_sent`).
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
import httpx
import pytest

from orchestrator.core.errors import ErrorKind, OntapError
from orchestrator.ontap import transport as transport_module
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.transport import ClusterTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK_JOB = b'{"job": {"uuid": "j1", "state": "success"}}'
TIMEOUT = httpx.Timeout(2.0)
LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=4.0)


@dataclass
class Wire:
    """A raw HTTP server on loopback: what it saw."""

    port: int
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)


@asynccontextmanager
async def serve(
    handler: Callable[[Wire, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[Wire]:
    wire = Wire(port=0)

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        wire.connections += 1
        try:
            await handler(wire, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    wire.port = server.sockets[0].getsockname()[1]
    try:
        yield wire
    finally:
        server.close()


async def read_request(wire: Wire, reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    body = await reader.readexactly(length) if length else b""
    wire.requests.append(head + body)
    return head + body


def answer(status: int, body: bytes, *extra: bytes) -> bytes:
    headers = [b"HTTP/1.1 %d X" % status, b"Content-Type: application/json", *extra]
    if not any(h.lower().startswith((b"content-length", b"transfer-encoding")) for h in extra):
        headers.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


async def keep_answering(
    wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    while True:
        await read_request(wire, reader)
        writer.write(answer(202, OK_JOB))
        await writer.drain()


def client_for(wire: Wire, limits: httpx.Limits = LIMITS) -> httpx.AsyncClient:
    transport = ClusterTransport(ssl_context=None, limits=limits)
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{wire.port}", transport=transport, timeout=TIMEOUT
    )


async def post_rekey(http: httpx.AsyncClient) -> OntapError:
    """The ONTAP client's POST, expected to fail: its error."""
    client = OntapClient("c1", http)
    with pytest.raises(OntapError) as info:
        await client.rekey_external("cfg-1", "key-2", return_timeout=30)
    return info.value


pytestmark = pytest.mark.anyio


async def test_keep_alive_reuses_one_connection_and_sends_the_request_as_given() -> None:
    async with serve(keep_answering) as wire, client_for(wire) as http:
        for _ in range(3):
            response = await http.post("/api/x?return_timeout=30", json={"key_id": "k"})
            assert response.status_code == 202
            assert response.json() == {"job": {"uuid": "j1", "state": "success"}}
    assert wire.connections == 1
    first = wire.requests[0]
    assert first.startswith(b"POST /api/x?return_timeout=30 HTTP/1.1\r\n")
    assert b"\r\nhost: 127.0.0.1:" in first.lower()
    assert first.endswith(b'{"key_id":"k"}')


async def test_a_drop_after_the_request_went_out_is_maybe_sent() -> None:
    async def drop(wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(wire, reader)  # the whole POST arrived; then the line drops

    async with serve(drop) as wire, client_for(wire) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post("/api/x", json={})
        error = await post_rekey(http)
    assert error.kind is ErrorKind.SENT
    assert error.maybe_sent is True


async def test_a_refused_connection_is_never_sent() -> None:
    async with serve(keep_answering) as wire:
        port = wire.port  # the server closes on exit: nothing listens there any more
    closed = Wire(port=port)
    async with client_for(closed) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/api/cluster")
        error = await post_rekey(http)
    assert error.kind is ErrorKind.CONNECT
    assert error.maybe_sent is False


async def test_no_answer_within_the_read_timeout_is_maybe_sent() -> None:
    async def hang(wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(wire, reader)
        await asyncio.sleep(30)

    async with serve(hang) as wire:
        http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{wire.port}",
            transport=ClusterTransport(ssl_context=None, limits=LIMITS),
            timeout=httpx.Timeout(0.3),
        )
        async with http:
            with pytest.raises(httpx.ReadTimeout):
                await http.post("/api/x", json={})
            error = await post_rekey(http)
    assert error.kind is ErrorKind.SENT
    assert error.maybe_sent is True


async def test_a_response_cut_short_is_maybe_sent() -> None:
    async def cut(wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(wire, reader)
        writer.write(answer(202, OK_JOB)[:-10])  # Content-Length promises 10 more bytes
        await writer.drain()

    async with serve(cut) as wire, client_for(wire) as http:
        error = await post_rekey(http)
    assert error.kind is ErrorKind.SENT
    assert error.maybe_sent is True


async def test_garbage_instead_of_http_is_a_protocol_error_after_sending() -> None:
    async def garbage(
        wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(wire, reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(5)

    async with serve(garbage) as wire, client_for(wire) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="malformed"):
            await http.get("/api/cluster")
        error = await post_rekey(http)
    assert error.maybe_sent is True


async def test_an_idle_connection_the_server_closed_is_not_used_again() -> None:
    async def one_then_close(
        wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(wire, reader)
        writer.write(answer(200, b"{}"))  # keep-alive implied, then closed while idle
        await writer.drain()

    async with serve(one_then_close) as wire, client_for(wire) as http:
        assert (await http.get("/a")).status_code == 200
        await anyio.sleep(0.2)  # the server's close reaches the pooled connection
        assert (await http.post("/b", json={})).status_code == 200
    assert wire.connections == 2
    assert len(wire.requests) == 2  # the POST went out once, on the new connection


async def test_connection_close_and_expired_idle_connections_open_new_ones() -> None:
    async def close_each(
        wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(wire, reader)
        writer.write(answer(200, b"{}", b"Connection: close"))
        await writer.drain()

    async with serve(close_each) as wire, client_for(wire) as http:
        for _ in range(3):
            assert (await http.get("/a")).status_code == 200
    assert wire.connections == 3

    expired = httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=0.0)
    async with serve(keep_answering) as wire, client_for(wire, expired) as http:
        for _ in range(2):
            assert (await http.get("/a")).status_code == 202
    assert wire.connections == 2


async def test_bodies_delimited_by_chunks_or_by_the_end_of_the_connection() -> None:
    async def chunked(
        wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(wire, reader)
        body = b'5\r\n{"a":\r\n3\r\n 1}\r\n0\r\n\r\n'
        writer.write(answer(200, body, b"Transfer-Encoding: chunked"))
        await read_request(wire, reader)
        writer.write(b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"b": 2}')
        await writer.drain()

    async with serve(chunked) as wire, client_for(wire) as http:
        assert (await http.get("/a")).json() == {"a": 1}
        assert (await http.get("/b")).json() == {"b": 2}


async def test_requests_beyond_max_connections_wait_then_time_out_unsent() -> None:
    release = anyio.Event()

    async def slow(wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(wire, reader)
        await release.wait()
        writer.write(answer(200, b"{}"))
        await writer.drain()

    one = httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=4.0)
    async with serve(slow) as wire:
        http = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{wire.port}",
            transport=ClusterTransport(ssl_context=None, limits=one),
            timeout=httpx.Timeout(5.0, pool=0.2),
        )
        async with http, anyio.create_task_group() as group:
            group.start_soon(http.get, "/first")
            await anyio.sleep(0.1)
            with pytest.raises(httpx.PoolTimeout):
                await http.post("/second", json={})
            error = await post_rekey(http)
            release.set()
    assert error.kind is ErrorKind.CONNECT  # never sent: no connection was free
    assert error.maybe_sent is False
    assert len(wire.requests) == 1


async def test_a_cancelled_exchange_closes_its_connection() -> None:
    async def late(wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(wire, reader)
            await asyncio.sleep(0.3)
            writer.write(answer(200, b"{}"))
            await writer.drain()

    async with serve(late) as wire, client_for(wire) as http:
        with anyio.move_on_after(0.1):
            await http.get("/cancelled")
        # the late answer to /cancelled must not be taken as the answer to /next
        response = await http.get("/next")
        assert response.status_code == 200
    assert wire.connections == 2


async def test_idle_connections_are_closed_when_they_expire_without_another_request() -> None:
    """A cluster whose targets are done is never asked again: its idle connections must
    not stay open until the run ends (thousands of clusters, ~5 connections each)."""
    closed = anyio.Event()

    async def until_eof(
        wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(wire, reader)
        writer.write(answer(200, b"{}"))
        await writer.drain()
        assert await reader.read() == b""  # EOF: the client closed the idle connection
        closed.set()

    short = httpx.Limits(max_connections=4, max_keepalive_connections=4, keepalive_expiry=0.2)
    async with serve(until_eof) as wire, client_for(wire, short) as http:
        assert (await http.get("/a")).status_code == 200
        with anyio.fail_after(3):
            await closed.wait()


# -- the response built already read (issue 16) ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "headers", "content"),
    [
        (200, [(b"Content-Type", b"application/json"), (b"Content-Length", b"8")], b'{"a": 1}'),
        (200, [(b"Transfer-Encoding", b"chunked")], b'{"a": 1}'),  # no length: httpx adds it
        (200, [(b"Connection", b"close")], b"until the end"),
        (204, [], b""),
        (503, [(b"Content-Length", b"0"), (b"Retry-After", b"5")], b""),
        # httpx decodes; mtime=0: the same bytes (and test id) in every process
        (200, [(b"Content-Encoding", b"gzip")], gzip.compress(b'{"z": 1}', mtime=0)),
    ],
)
async def test_the_lean_response_is_the_response_httpx_builds(
    status: int, headers: list[tuple[bytes, bytes]], content: bytes
) -> None:
    """What the transport hands back is what `httpx.Response(..., content=...)` is: the
    same headers, body, text, read and closed state, and it reads and iterates the same.
    Also a pin: it fails when httpx keeps a read body elsewhere than the lean path sets."""
    request = httpx.Request("GET", "https://c1/api/x")
    ours = transport_module._response(
        status,
        list(headers),
        content,
        request,
        any(n.lower() == b"content-length" for n, _ in headers),
        any(n.lower() == b"content-encoding" for n, _ in headers),
    )
    theirs = httpx.Response(
        status,
        headers=headers,
        content=content,
        request=request,
        extensions={"http_version": b"HTTP/1.1"},
    )
    assert transport_module._LEAN_RESPONSES
    assert ours.status_code == theirs.status_code
    assert ours.headers.raw == theirs.headers.raw
    assert ours.content == theirs.content
    assert ours.text == theirs.text
    assert ours.http_version == theirs.http_version
    assert ours.request is theirs.request
    assert (ours.is_closed, ours.is_stream_consumed) == (
        theirs.is_closed,
        theirs.is_stream_consumed,
    )
    assert ours.num_bytes_downloaded == theirs.num_bytes_downloaded
    assert await ours.aread() == await theirs.aread()
    assert list(ours.iter_bytes()) == list(theirs.iter_bytes())
    assert [c async for c in ours.aiter_bytes()] == [c async for c in theirs.aiter_bytes()]
    await ours.aclose()


async def test_a_compressed_answer_is_decoded() -> None:
    """Over the wire: a gzip body (the client asks for it) arrives decoded."""

    async def gzipped(
        wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(wire, reader)
        writer.write(answer(200, gzip.compress(b'{"a": 1}'), b"Content-Encoding: gzip"))
        await writer.drain()

    async with serve(gzipped) as wire, client_for(wire) as http:
        assert (await http.get("/a")).json() == {"a": 1}


async def test_a_compressed_answer_that_does_not_decode_is_maybe_sent() -> None:
    """The answer came back, so the POST reached the cluster: a body that fails to
    decode is "sent" (maybe_sent), not a clean refusal."""

    async def garbled(
        wire: Wire, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            await read_request(wire, reader)
            writer.write(answer(202, b"not gzip at all", b"Content-Encoding: gzip"))
            await writer.drain()

    async with serve(garbled) as wire, client_for(wire) as http:
        with pytest.raises(httpx.DecodingError):
            await http.post("/api/x", json={})
        error = await post_rekey(http)
    assert error.kind is ErrorKind.SENT
    assert error.maybe_sent is True
