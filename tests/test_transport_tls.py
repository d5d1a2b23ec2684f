"""TLS session resumption in the lean transport (ontap/transport.py), on loopback sockets.

Each server is a real asyncio TLS server with a certificate from a generated CA
(`FleetTls`, as the simulator's); each test reads, on both sides, whether a handshake was
resumed (`SSLObject.session_reused`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.transport import HANDSHAKES, ClusterTransport, resuming_context
from orchestrator.simulator.fleet import Fleet, FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import start_simulation
from orchestrator.simulator.tls import FleetTls

pytestmark = pytest.mark.anyio

TIMEOUT = httpx.Timeout(5.0)
# No idle connection is kept: every request opens a new connection (a new handshake).
FRESH = httpx.Limits(max_connections=4, max_keepalive_connections=0)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> FleetTls:
    return FleetTls(tmp_path_factory.mktemp("ca"))


@dataclass
class TlsWire:
    """What a TLS server saw: per connection, whether its handshake was resumed."""

    port: int = 0
    resumed: list[bool] = field(default_factory=list)


@asynccontextmanager
async def serve_tls(context: ssl.SSLContext, port: int = 0) -> AsyncIterator[TlsWire]:
    """A keep-alive HTTPS server answering `{}` to every request on 127.0.0.1."""
    wire = TlsWire()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        wire.resumed.append(bool(writer.get_extra_info("ssl_object").session_reused))
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(ANSWER)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", port, ssl=context)
    wire.port = server.sockets[0].getsockname()[1]
    try:
        yield wire
    finally:
        server.close()
        await server.wait_closed()


def transport_for(ca: FleetTls, limits: httpx.Limits = FRESH) -> ClusterTransport:
    return ClusterTransport(ssl_context=resuming_context(str(ca.ca_pem_path)), limits=limits)


async def get(transport: ClusterTransport, port: int, host: str = "127.0.0.1") -> int:
    async with httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as http:
        return (await http.get(f"https://{host}:{port}/api/cluster")).status_code


class _KeepOpen(ClusterTransport):
    """A transport whose `aclose` does nothing: one client after another on it."""

    async def aclose(self) -> None:
        pass


def keep_open(ca: FleetTls, limits: httpx.Limits = FRESH) -> ClusterTransport:
    return _KeepOpen(ssl_context=resuming_context(str(ca.ca_pem_path)), limits=limits)


async def test_the_next_connections_to_a_cluster_resume_its_session(ca: FleetTls) -> None:
    transport = keep_open(ca)
    before = HANDSHAKES.copy()
    async with serve_tls(ca.server_context("127.0.0.1")) as wire:
        statuses = [await get(transport, wire.port) for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert wire.resumed == [False, True, True]  # the server saw it too
    assert transport.handshakes == {"full": 1, "resumed": 2}
    assert HANDSHAKES["resumed"] - before["resumed"] == 2  # the process-wide count


async def test_a_session_is_read_only_when_a_new_connection_needs_it(
    ca: FleetTls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a connection's TLS session costs ~0.5 ms of CPU (CPython copies it through
    its DER encoding): it is read from the newest connection when a new connection is
    opened, not after every new connection's first response. One connection, then three
    requests at once (the idle one reused, two new ones resumed from it), then three more
    on the idle connections: one read (it was three, one per new connection)."""
    reads: list[bool] = []
    keep = ClusterTransport._keep_session

    def counted(self: ClusterTransport, connection: Any, origin: Any) -> None:
        reads.append(True)
        keep(self, connection, origin)

    monkeypatch.setattr(ClusterTransport, "_keep_session", counted)
    transport = keep_open(ca, httpx.Limits(max_connections=4, max_keepalive_connections=4))
    async with (
        serve_tls(ca.server_context("127.0.0.1")) as wire,
        httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as http,
    ):
        url = f"https://127.0.0.1:{wire.port}/api/cluster"
        assert (await http.get(url)).status_code == 200
        for _ in range(2):
            answers = await asyncio.gather(*(http.get(url) for _ in range(3)))
            assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert wire.resumed == [False, True, True]
    assert transport.handshakes == {"full": 1, "resumed": 2}
    assert len(reads) == 1


async def test_a_session_is_never_offered_to_another_origin(ca: FleetTls) -> None:
    """One server context (one ticket key) on two ports: a session of the first port
    offered to the second would be accepted there, so a full handshake on the second port
    proves it was not offered. The host name is part of the origin too."""
    context = ca.server_context("127.0.0.1")
    transport = keep_open(ca)
    async with serve_tls(context) as first, serve_tls(context) as second:
        assert await get(transport, first.port) == 200
        assert await get(transport, first.port) == 200
        assert await get(transport, second.port) == 200
        assert await get(transport, second.port, host="localhost") == 200
    assert first.resumed == [False, True]
    assert second.resumed == [False, False]
    assert transport.handshakes == {"full": 3, "resumed": 1}


async def test_two_clusters_with_their_own_certificates_share_nothing(ca: FleetTls) -> None:
    """Two clusters (two transports, one shared client context, as the engine builds
    them for the same trust settings), two servers, two certificates: each cluster's
    first connection is a full handshake that verifies its own server's certificate."""
    context = resuming_context(str(ca.ca_pem_path))
    one = _KeepOpen(ssl_context=context, limits=FRESH)
    two = _KeepOpen(ssl_context=context, limits=FRESH)
    shared = ca.server_context("127.0.0.1")  # a ticket of cluster one would resume here
    async with serve_tls(shared) as a, serve_tls(shared) as b:
        assert [await get(one, a.port) for _ in range(2)] == [200, 200]
        assert [await get(two, b.port) for _ in range(2)] == [200, 200]
    assert (a.resumed, b.resumed) == ([False, True], [False, True])
    async with serve_tls(ca.server_context("127.0.0.1")) as c:
        assert await get(two, c.port) == 200
    assert c.resumed == [False]


async def test_a_server_that_issues_no_tickets_still_works(ca: FleetTls) -> None:
    context = ca.server_context("127.0.0.1")
    context.num_tickets = 0  # TLS 1.3
    context.options |= ssl.OP_NO_TICKET  # TLS 1.2
    transport = keep_open(ca)
    async with serve_tls(context) as wire:
        statuses = [await get(transport, wire.port) for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert wire.resumed == [False, False, False]
    assert transport.handshakes == {"full": 3}


async def test_a_refused_session_is_a_full_handshake(ca: FleetTls) -> None:
    """The cluster restarts with a new certificate (new ticket keys): the offered session
    is refused and the connection is a normal, verified, full handshake."""
    transport = keep_open(ca)
    async with serve_tls(ca.server_context("127.0.0.1")) as wire:
        assert [await get(transport, wire.port) for _ in range(2)] == [200, 200]
        port = wire.port
    async with serve_tls(ca.server_context("127.0.0.1"), port=port) as again:
        assert await get(transport, port) == 200
    assert (wire.resumed, again.resumed) == ([False, True], [False])
    assert transport.handshakes == {"full": 2, "resumed": 1}


@pytest.mark.parametrize("server", ["another CA", "another host name"])
async def test_a_certificate_that_fails_verification_still_fails(
    ca: FleetTls, tmp_path: Path, server: str
) -> None:
    """A session of this origin is kept; then the server at that origin presents a
    certificate that does not verify: the handshake fails (no resumption bypass), and it
    is "never sent" (a ConnectError with the certificate error as its cause)."""
    transport = keep_open(ca)
    async with serve_tls(ca.server_context("127.0.0.1")) as wire:
        assert [await get(transport, wire.port) for _ in range(2)] == [200, 200]
        port = wire.port
    bad = (
        FleetTls(tmp_path).server_context("127.0.0.1")
        if server == "another CA"
        else ca.server_context("127.0.0.9")  # valid for 127.0.0.9 and localhost only
    )
    async with serve_tls(bad, port=port):
        with pytest.raises(httpx.ConnectError) as info:
            await get(transport, port)
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert transport.handshakes == {"full": 1, "resumed": 1}


async def test_a_plain_context_does_not_resume(ca: FleetTls) -> None:
    """Resumption needs the transport's `ResumingContext`; another context works as before."""
    context = ssl.create_default_context(cafile=str(ca.ca_pem_path))
    transport = _KeepOpen(ssl_context=context, limits=FRESH)
    async with serve_tls(ca.server_context("127.0.0.1")) as wire:
        assert [await get(transport, wire.port) for _ in range(2)] == [200, 200]
    assert wire.resumed == [False, False]


async def test_a_client_certificate_still_authenticates_on_resumed_connections(
    ca: FleetTls,
) -> None:
    """The simulator authenticates by the client certificate's CN: a resumed session
    carries the certificate of its full handshake, so every request is still `admin`."""
    fleet = Fleet(FleetSpec.generate(1, 2), Scenario.from_yaml("faults: []"))
    simulation = await start_simulation(fleet, tls=ca)
    try:
        cert = simulation.issue_client_cert("admin")
        context = resuming_context(str(ca.ca_pem_path))
        context.load_cert_chain(cert.cert_path, cert.key_path)
        transport = _KeepOpen(ssl_context=context, limits=FRESH)
        url = simulation.urls["c001"]
        for _ in range(3):
            async with httpx.AsyncClient(base_url=url, transport=transport) as http:
                cluster = await OntapClient("c001", http).cluster_info()
                assert cluster.name == "c001"
    finally:
        await simulation.aclose()
    assert transport.handshakes == {"full": 1, "resumed": 2}


def test_the_resuming_context_has_the_standard_librarys_default_settings(
    ca: FleetTls,
) -> None:
    ours = resuming_context(str(ca.ca_pem_path))
    standard = ssl.create_default_context(cafile=str(ca.ca_pem_path))
    for name in (
        "protocol",
        "verify_mode",
        "check_hostname",
        "options",
        "verify_flags",
        "minimum_version",
        "maximum_version",
        "post_handshake_auth",
        "hostname_checks_common_name",
    ):
        assert getattr(ours, name) == getattr(standard, name), name
    assert ours.get_ca_certs() == standard.get_ca_certs()
    assert [c["name"] for c in ours.get_ciphers()] == [c["name"] for c in standard.get_ciphers()]
    system = resuming_context()
    assert system.cert_store_stats() == ssl.create_default_context().cert_store_stats()
