"""The simulator's HTTP server over real loopback sockets, with small apps of its own.

The fleet-level tests (TLS bundle, unreachable clusters, certificate auth against the
simulator app) are at the end; NetApp's client is in `test_sim_conformance.py`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.simulator.errors import DropConnection
from orchestrator.simulator.fleet import Fleet, FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import (
    BoundAddress,
    FleetServer,
    Listener,
    Receive,
    Scope,
    Send,
    Simulation,
    fleet_listeners,
    running_simulator,
    start_simulation,
)
from orchestrator.simulator.tls import FleetTls

pytestmark = pytest.mark.anyio


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with the scope (minus the unserialisable bits) and the request body."""
    if scope["path"] == "/drop":
        raise DropConnection
    if scope["path"] == "/crash":
        raise RuntimeError("boom")
    if scope["path"] == "/slow":
        await asyncio.sleep(0.2)
    message = await receive()
    payload = {
        key: scope[key]
        for key in ("method", "path", "http_version", "scheme", "server", "client", "extensions")
    }
    payload["raw_path"] = scope["raw_path"].decode()
    payload["query_string"] = scope["query_string"].decode()
    payload["headers"] = {k.decode(): v.decode() for k, v in scope["headers"]}
    payload["body"] = message["body"].decode()
    await _json(send, payload)


async def _json(send: Send, payload: object, status: int = 200) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def echo_server() -> AsyncIterator[list[BoundAddress]]:
    """Two listeners on distinct ports of 127.0.0.1, one on 127.1.0.7, one refusing."""
    listeners = [
        Listener("127.0.0.1"),
        Listener("127.0.0.1"),
        Listener("127.1.0.7"),
        Listener("127.0.0.1", refuse=True),
    ]
    async with FleetServer(echo_app, listeners, abort_on=(DropConnection,)) as server:
        yield server.addresses


async def test_scope_describes_the_request_and_the_listening_socket(
    echo_server: list[BoundAddress],
) -> None:
    """method, path (decoded), raw_path, query, headers, server = the listener's address."""
    async with httpx.AsyncClient() as client:
        for address in echo_server[:3]:
            response = await client.get(f"{address.url}/api/a%20b?fields=name&x=1")
            seen = response.json()
            assert seen["server"] == [address.host, address.port]
            assert seen["path"] == "/api/a b"
            assert seen["raw_path"] == "/api/a%20b"
            assert seen["query_string"] == "fields=name&x=1"
            assert (seen["method"], seen["http_version"], seen["scheme"]) == ("GET", "1.1", "http")
            assert seen["client"][0] == "127.0.0.1"
            assert seen["headers"]["host"] == f"{address.host}:{address.port}"
            assert seen["extensions"] == {}


async def test_request_bodies_with_content_length_and_chunked(
    echo_server: list[BoundAddress],
) -> None:
    """The app receives the whole body in one message, however it was framed."""

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b'{"key_id": ', b'"k-1"}'):
            yield part

    async with httpx.AsyncClient() as client:
        url = f"{echo_server[0].url}/api/x"
        plain = await client.post(url, content=b'{"key_id": "k-1"}')
        chunked = await client.post(url, content=chunks())
    assert plain.json()["body"] == chunked.json()["body"] == '{"key_id": "k-1"}'
    assert chunked.json()["headers"]["transfer-encoding"] == "chunked"


async def test_keep_alive_serves_many_requests_on_one_connection(
    echo_server: list[BoundAddress],
) -> None:
    """Every request of a client arrives from the same client port."""
    async with httpx.AsyncClient() as client:
        ports = {
            (await client.get(f"{echo_server[0].url}/k")).json()["client"][1] for _ in range(5)
        }
    assert len(ports) == 1


async def test_pipelined_requests_are_answered_in_order(
    echo_server: list[BoundAddress],
) -> None:
    """Two requests written at once get two responses, in order, on one connection."""
    address = echo_server[0]
    reader, writer = await asyncio.open_connection(address.host, address.port)
    writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
    paths = [json.loads(await _read_response(reader))["path"] for _ in range(2)]
    writer.close()
    assert paths == ["/one", "/two"]


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


async def test_drop_connection_aborts_without_a_response(
    echo_server: list[BoundAddress],
) -> None:
    """DropConnection from the app: the client sees the connection die, not a response."""
    async with httpx.AsyncClient() as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.get(f"{echo_server[0].url}/drop")
        # The listener is unharmed: the next request is served on a new connection.
        assert (await client.get(f"{echo_server[0].url}/after")).status_code == 200


async def test_an_app_error_is_a_500_in_ontap_shape(echo_server: list[BoundAddress]) -> None:
    """An exception before the response starts becomes a 500 with an ONTAP error body."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{echo_server[0].url}/crash")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "1"


async def test_a_refusing_listener_refuses_connections(echo_server: list[BoundAddress]) -> None:
    """A held address answers connect() with a refusal, like an unreachable cluster."""
    refused = echo_server[3]
    assert not refused.listening
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{refused.url}/api/cluster")


async def test_malformed_request_gets_400(echo_server: list[BoundAddress]) -> None:
    """A request h11 cannot parse is answered 400 and the connection closed."""
    address = echo_server[0]
    reader, writer = await asyncio.open_connection(address.host, address.port)
    writer.write(b"NOT HTTP AT ALL\r\n\r\n")
    status_line = await reader.readline()
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 400")


async def test_shutdown_lets_the_request_in_flight_finish() -> None:
    """aclose() stops listening, finishes the slow request, then closes."""
    server = FleetServer(echo_app, [Listener("127.0.0.1")])
    (address,) = await server.start()
    async with httpx.AsyncClient() as client:
        request = asyncio.ensure_future(client.get(f"{address.url}/slow"))
        await _until(lambda: bool(server._tasks))
        await server.aclose()
        assert (await request).status_code == 200
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{address.url}/after")


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0)


async def test_many_listeners_each_report_their_own_address() -> None:
    """200 listeners in one server, each request lands on the socket it was sent to."""
    listeners = [Listener("127.0.0.1") for _ in range(100)]
    listeners += [Listener(f"127.2.0.{i}") for i in range(1, 101)]
    async with FleetServer(echo_app, listeners) as server, httpx.AsyncClient() as client:
        answers = await asyncio.gather(*(client.get(f"{a.url}/") for a in server.addresses))
    seen = [tuple(answer.json()["server"]) for answer in answers]
    assert seen == [(a.host, a.port) for a in server.addresses]


# -- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fleet_tls(tmp_path_factory: pytest.TempPathFactory) -> FleetTls:
    """One CA for the TLS tests of this module (issuing is cheap, the CA a little less)."""
    return FleetTls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
async def tls_server(fleet_tls: FleetTls) -> AsyncIterator[list[BoundAddress]]:
    """Two HTTPS listeners, each with its own certificate from the fleet's CA."""
    listeners = [
        Listener("127.0.0.1", ssl_context=fleet_tls.server_context("127.0.0.1")),
        Listener("127.1.0.9", ssl_context=fleet_tls.server_context("127.1.0.9")),
    ]
    async with FleetServer(echo_app, listeners) as server:
        yield server.addresses


async def test_tls_listeners_verify_against_the_ca_bundle(
    fleet_tls: FleetTls, tls_server: list[BoundAddress]
) -> None:
    """The written ca.pem verifies each listener's certificate (SAN = its IP address)."""
    context = ssl.create_default_context(cafile=str(fleet_tls.ca_pem_path))
    async with httpx.AsyncClient(verify=context) as client:
        for address in tls_server:
            seen = (await client.get(f"{address.url}/")).json()
            assert seen["scheme"] == "https"
            assert seen["extensions"]["tls"]["client_cert_cn"] is None


async def test_client_certificate_common_name_reaches_the_scope(
    fleet_tls: FleetTls, tls_server: list[BoundAddress]
) -> None:
    """A client certificate from the fleet's CA: its CN is in extensions.tls."""
    cert = fleet_tls.issue_client_cert("vsadmin")
    context = fleet_tls.client_context()
    context.load_cert_chain(cert.cert_path, cert.key_path)
    async with httpx.AsyncClient(verify=context) as client:
        seen = (await client.get(f"{tls_server[0].url}/")).json()
    assert seen["extensions"]["tls"]["client_cert_cn"] == "vsadmin"


async def test_a_foreign_client_certificate_is_refused(
    tls_server: list[BoundAddress], tmp_path: Path
) -> None:
    """A client certificate from another CA fails the handshake."""
    stranger = FleetTls(tmp_path).issue_client_cert("admin")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(stranger.cert_path, stranger.key_path)
    async with httpx.AsyncClient(verify=context) as client:
        with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
            await client.get(f"{tls_server[0].url}/")


# -- the simulated fleet on sockets -------------------------------------------------------

FAULTS = """
faults:
  - {kind: unreachable, cluster: c003}
  - {kind: drop_before, cluster: c002, rate: 1.0}
"""


@pytest.fixture
async def fleet_on_tls(fleet_tls: FleetTls) -> AsyncIterator[Simulation]:
    """Four clusters on their own 127.1.x.y addresses over HTTPS; c003 unreachable."""
    fleet = Fleet(FleetSpec.generate(4, 2), Scenario.from_yaml(FAULTS))
    simulation = await start_simulation(fleet, tls=fleet_tls, address_per_cluster=True)
    try:
        yield simulation
    finally:
        await simulation.aclose()


async def test_the_ca_bundle_verifies_every_cluster(fleet_on_tls: Simulation) -> None:
    """Each reachable cluster's certificate verifies against ca.pem for its own address."""
    assert fleet_on_tls.ca_pem_path is not None
    context = ssl.create_default_context(cafile=str(fleet_on_tls.ca_pem_path))
    hosts = set()
    async with httpx.AsyncClient(verify=context, auth=("admin", "netapp-sim")) as client:
        for name, url in fleet_on_tls.urls.items():
            if name in fleet_on_tls.unreachable:
                continue
            response = await client.get(f"{url}/api/cluster?fields=name")
            assert response.json()["name"] == name
            hosts.add(fleet_on_tls.addresses[name].host)
    assert len(hosts) == 3


async def test_an_unreachable_cluster_refuses_connections(fleet_on_tls: Simulation) -> None:
    """The scenario's unreachable cluster has an address, but connecting is refused."""
    assert fleet_on_tls.unreachable == ("c003",)
    async with httpx.AsyncClient(verify=False) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{fleet_on_tls.urls['c003']}/api/cluster")


async def test_a_scenario_drop_aborts_the_connection(fleet_on_tls: Simulation) -> None:
    """drop_before on a rekey POST: the socket dies without a response."""
    context = fleet_on_tls.tls.client_context() if fleet_on_tls.tls else None
    url = fleet_on_tls.urls["c002"]
    async with httpx.AsyncClient(verify=context or True, auth=("admin", "netapp-sim")) as client:
        records = (await client.get(f"{url}/api/security/aws-kms")).json()["records"]
        rekey = f"{url}/api/security/aws-kms/{records[0]['uuid']}/rekey-external"
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.post(rekey, json={"key_id": "k"})


async def test_client_certificate_auth_against_the_simulator(
    fleet_on_tls: Simulation,
) -> None:
    """CN = a fleet user logs in without a password; an unknown CN gets ONTAP's 401."""
    url = f"{fleet_on_tls.urls['c001']}/api/cluster"
    statuses = []
    for username in ("admin", "mallory"):
        cert = fleet_on_tls.issue_client_cert(username)
        assert fleet_on_tls.tls is not None
        context = fleet_on_tls.tls.client_context()
        context.load_cert_chain(cert.cert_path, cert.key_path)
        async with httpx.AsyncClient(verify=context) as client:
            statuses.append((await client.get(url)).status_code)
    assert statuses == [200, 401]


def test_running_simulator_serves_from_a_thread_on_os_ports() -> None:
    """The thread helper: OS-chosen ports, one URL per cluster, stats over HTTP."""
    with running_simulator(FleetSpec.generate(3, 1)) as simulation:
        ports = {simulation.addresses[name].port for name in simulation.urls}
        response = httpx.get(f"{simulation.urls['c002']}/api/cluster", auth=("admin", "netapp-sim"))
        stats = simulation.stats()
    assert len(ports) == 3
    assert response.json()["name"] == "c002"
    assert set(stats["clusters"]) == {"c001", "c002", "c003"}


def test_fleet_listeners_assign_ports_and_addresses() -> None:
    """base_port gives cluster i port base+i; address_per_cluster gives each an address."""
    fleet = Fleet(FleetSpec.generate(3, 1))
    by_port = fleet_listeners(fleet, base_port=20000)
    by_address = fleet_listeners(fleet, base_port=8443, address_per_cluster=True)
    assert [(x.host, x.port) for x in by_port] == [("127.0.0.1", 20000 + i) for i in range(3)]
    assert [(x.host, x.port) for x in by_address] == [
        ("127.1.0.1", 8443),
        ("127.1.0.2", 8443),
        ("127.1.0.3", 8443),
    ]
