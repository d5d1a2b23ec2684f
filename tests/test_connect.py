"""Building the per-cluster HTTP client: auth, TLS, secrets, and what httpx logs."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from orchestrator.core.errors import ErrorKind, OntapError
from orchestrator.core.inventory import (
    Auth,
    BasicAuth,
    CertAuth,
    ClusterSpec,
    TlsSettings,
    TokenAuth,
)
from orchestrator.errors import UserError
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.connect import BearerAuth, build_http_client, build_ssl_context

PASSWORD = "Tr0ub4dor&3-secret"
TIMEOUT = httpx.Timeout(5.0)


def spec(auth: Auth, tls: TlsSettings | None = None, url: str = "https://c1:443") -> ClusterSpec:
    return ClusterSpec(name="c1", base_url=url, auth=auth, tls=tls or TlsSettings(), key_id="k")


def capture() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    return httpx.MockTransport(app), seen


async def send_one(cluster: ClusterSpec, environ: dict[str, str]) -> httpx.Request:
    transport, seen = capture()
    async with build_http_client(
        cluster, timeout=TIMEOUT, transport=transport, environ=environ
    ) as http:
        await http.get("/api/cluster")
    return seen[0]


# -- auth ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_basic_auth_from_env() -> None:
    """username + password_env gives a Basic header; base URL and JSON accept set."""
    request = await send_one(spec(BasicAuth("admin", password_env="PW")), {"PW": PASSWORD})
    expected = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert request.headers["Accept"] == "application/json"
    assert str(request.url) == "https://c1/api/cluster"


@pytest.mark.anyio
async def test_basic_auth_from_file_strips_one_newline(tmp_path: Path) -> None:
    """password_file: one trailing newline is dropped, other whitespace kept."""
    secret = tmp_path / "pw"
    secret.write_text(f" {PASSWORD}\n\n", encoding="utf-8")
    request = await send_one(spec(BasicAuth("admin", password_file=secret)), {})
    expected = base64.b64encode(f"admin: {PASSWORD}\n".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


@pytest.mark.anyio
async def test_bearer_token_from_env() -> None:
    """token_env gives a Bearer header; the auth object's repr hides the token."""
    request = await send_one(spec(TokenAuth("TOK")), {"TOK": "eyJ.secret.token"})
    assert request.headers["Authorization"] == "Bearer eyJ.secret.token"
    assert "secret" not in repr(BearerAuth("eyJ.secret.token"))


@pytest.mark.anyio
async def test_client_certificate_sends_no_authorization_header(certs: Certs) -> None:
    """Certificate auth authenticates in the handshake: no Authorization header."""
    request = await send_one(spec(CertAuth(certs.client_cert, certs.client_key)), {})
    assert "Authorization" not in request.headers


@pytest.mark.parametrize(
    ("environ", "state"), [({"OTHER": PASSWORD}, "is not set"), ({"PW": ""}, "is empty")]
)
def test_missing_env_var_names_the_variable_not_a_value(
    environ: dict[str, str], state: str
) -> None:
    """A missing or empty variable is a UserError naming it, never any value."""
    with pytest.raises(UserError) as info:
        build_http_client(
            spec(BasicAuth("admin", password_env="PW")), timeout=TIMEOUT, environ=environ
        )
    assert "PW" in str(info.value)
    assert state in str(info.value)
    assert PASSWORD not in str(info.value)


def test_missing_token_env_names_the_variable() -> None:
    """Same for a bearer token variable."""
    with pytest.raises(UserError, match="ONTAP_TOKEN"):
        build_http_client(spec(TokenAuth("ONTAP_TOKEN")), timeout=TIMEOUT, environ={})


def test_unreadable_password_file_names_the_file(tmp_path: Path) -> None:
    """A missing file is a UserError naming the path."""
    missing = tmp_path / "nope.txt"
    with pytest.raises(UserError, match=r"nope\.txt"):
        build_http_client(spec(BasicAuth("admin", password_file=missing)), timeout=TIMEOUT)


def test_undecodable_password_file_quotes_no_bytes(tmp_path: Path) -> None:
    """A binary file is refused without quoting its content."""
    secret = tmp_path / "pw.bin"
    secret.write_bytes(b"\xff\xfeSECRET")
    with pytest.raises(UserError) as info:
        build_http_client(spec(BasicAuth("admin", password_file=secret)), timeout=TIMEOUT)
    assert "SECRET" not in str(info.value)
    assert "\\xff" not in str(info.value)
    assert info.value.__cause__ is None


# -- TLS ----------------------------------------------------------------------------------


class Certs:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate on disk."""

    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.server = self.ca.issue_cert("127.0.0.1", "localhost")
        client = self.ca.issue_cert("admin")
        self.ca_bundle = folder / "ca.pem"
        self.client_cert = folder / "client.pem"
        self.client_key = folder / "client.key"
        self.ca.cert_pem.write_to_path(str(self.ca_bundle))
        client.cert_chain_pems[0].write_to_path(str(self.client_cert))
        client.private_key_pem.write_to_path(str(self.client_key))
        key = serialization.load_pem_private_key(client.private_key_pem.bytes(), None)
        self.encrypted_key = folder / "encrypted.key"
        self.encrypted_key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"passphrase"),
            )
        )


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return Certs(tmp_path)


def test_verification_is_on_by_default() -> None:
    """No tls settings: hostname checked, certificate required."""
    context = build_ssl_context(spec(BasicAuth("a", password_env="X")))
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname


def test_verify_false_only_when_the_inventory_says_so() -> None:
    """`tls: {verify: false}` turns verification off."""
    context = build_ssl_context(spec(BasicAuth("a", password_env="X"), TlsSettings(verify=False)))
    assert context.verify_mode is ssl.CERT_NONE
    assert not context.check_hostname


def test_ca_bundle_is_loaded(certs: Certs) -> None:
    """`tls: {ca_bundle: ...}` trusts exactly that CA."""
    tls = TlsSettings(ca_bundle=certs.ca_bundle)
    context = build_ssl_context(spec(BasicAuth("a", password_env="X"), tls))
    assert len(context.get_ca_certs()) == 1
    assert context.verify_mode is ssl.CERT_REQUIRED


def test_missing_ca_bundle_names_the_file(tmp_path: Path) -> None:
    """An unreadable CA bundle is a UserError naming the file."""
    tls = TlsSettings(ca_bundle=tmp_path / "missing-ca.pem")
    with pytest.raises(UserError, match=r"missing-ca\.pem"):
        build_ssl_context(spec(BasicAuth("a", password_env="X"), tls))


def test_encrypted_client_key_is_refused_without_a_prompt(certs: Certs) -> None:
    """An encrypted key would make OpenSSL prompt on the terminal: refuse it instead."""
    auth = CertAuth(certs.client_cert, certs.encrypted_key)
    with pytest.raises(UserError, match="encrypted"):
        build_ssl_context(spec(auth))


def test_bad_client_certificate_names_the_files(tmp_path: Path) -> None:
    """A missing certificate file is a UserError naming it."""
    auth = CertAuth(tmp_path / "c.pem", tmp_path / "c.key")
    with pytest.raises(UserError, match=r"c\.pem"):
        build_ssl_context(spec(auth))


# -- over a real loopback socket ----------------------------------------------------------


class LoopbackOntap:
    """A one-route HTTPS server on 127.0.0.1 answering `GET /api/cluster`."""

    def __init__(self, certs: Certs) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        certs.server.configure_cert(self.context)
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()
            return
        version = {"full": "9.14.1", "generation": 9, "major": 14, "minor": 1}
        body = json.dumps({"name": "c1", "uuid": "u", "version": version}).encode()
        head = (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()


@pytest.fixture
async def server(certs: Certs) -> AsyncIterator[LoopbackOntap]:
    ontap = LoopbackOntap(certs)
    srv = await asyncio.start_server(ontap.handle, "127.0.0.1", 0, ssl=ontap.context)
    ontap.port = srv.sockets[0].getsockname()[1]
    async with srv:
        yield ontap


@pytest.mark.anyio
async def test_real_tls_with_ca_bundle_succeeds(certs: Certs, server: LoopbackOntap) -> None:
    """With the cluster's CA bundle the handshake verifies and the call succeeds."""
    cluster = spec(
        BasicAuth("admin", password_env="PW"),
        TlsSettings(ca_bundle=certs.ca_bundle),
        url=f"https://127.0.0.1:{server.port}",
    )
    client = OntapClient("c1", build_http_client(cluster, timeout=TIMEOUT, environ={"PW": "x"}))
    try:
        assert (await client.cluster_info()).version == (9, 14, 1)
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_real_tls_unknown_ca_is_tls_error(server: LoopbackOntap) -> None:
    """Without the CA bundle verification fails: kind TLS, hint names ca_bundle."""
    cluster = spec(BasicAuth("admin", password_env="PW"), url=f"https://127.0.0.1:{server.port}")
    client = OntapClient("c1", build_http_client(cluster, timeout=TIMEOUT, environ={"PW": "x"}))
    try:
        with pytest.raises(OntapError) as info:
            await client.cluster_info()
    finally:
        await client.aclose()
    assert info.value.kind is ErrorKind.TLS
    assert "ca_bundle" in info.value.message
    assert "c1" in info.value.message


@pytest.mark.anyio
async def test_debug_logs_never_show_the_authorization_header(
    certs: Certs, server: LoopbackOntap, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx (and the lean transport under it) at DEBUG over a real socket: no password,
    no Basic token, no Authorization header."""
    cluster = spec(
        BasicAuth("admin", password_env="PW"),
        TlsSettings(ca_bundle=certs.ca_bundle),
        url=f"https://127.0.0.1:{server.port}",
    )
    client = OntapClient(
        "c1", build_http_client(cluster, timeout=TIMEOUT, environ={"PW": PASSWORD})
    )
    # other tests may have set the HTTP loggers to WARNING: open them up for this one
    with (
        caplog.at_level(logging.DEBUG),
        caplog.at_level(logging.DEBUG, logger="httpcore"),
        caplog.at_level(logging.DEBUG, logger="httpx"),
    ):
        try:
            await client.cluster_info()
        finally:
            await client.aclose()
    token = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert "HTTP Request: GET" in caplog.text  # httpx did log the request
    assert PASSWORD not in caplog.text
    assert token not in caplog.text
    assert "authorization" not in caplog.text.lower()


# -- the lean request path (issue 16) -------------------------------------------------------


@pytest.mark.anyio
async def test_every_request_carries_the_credentials_and_no_cookie_is_kept() -> None:
    """The Authorization header is on every request; a Set-Cookie is never sent back."""
    seen: list[httpx.Request] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={}, headers={"Set-Cookie": "session=abc; Path=/"})

    cluster = spec(BasicAuth("admin", password_env="PW"))
    async with build_http_client(
        cluster, timeout=TIMEOUT, transport=httpx.MockTransport(app), environ={"PW": PASSWORD}
    ) as http:
        await http.get("/api/cluster")
        await http.get("/api/cluster")
        assert len(http.cookies) == 0  # nothing was stored from the Set-Cookie
    expected = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert [r.headers.get("Authorization") for r in seen] == [expected, expected]
    assert all("Cookie" not in r.headers for r in seen)


@pytest.mark.parametrize(
    ("base", "url", "params"),
    [
        ("https://c1:443", "/api/cluster", {"fields": "name,uuid,version"}),
        ("https://127.0.0.1:8443", "/api/security/aws-kms", {"uuid": "a|b", "fields": "x"}),
        ("https://c1", "/api/security/aws-kms/a%2Fb/rekey-external", {"return_timeout": "0"}),
        ("https://c1/proxy/", "/api/cluster/jobs", {"description": "POST /api/x y"}),
        ("https://c1", "/api/security/key-stores?start.index=40&fields=uuid", None),
        ("https://c1", "/api/security/key-stores?start.index=40", {"fields": "uuid"}),
        ("https://c1", "https://c1/api/cluster?fields=name", None),
        ("https://c1", "/api/cluster", None),
    ],
)
def test_lean_build_request_matches_httpx(
    base: str, url: str, params: dict[str, str] | None
) -> None:
    """The one-parse request is the request httpx itself builds: URL, headers, timeout."""
    cluster = spec(BasicAuth("admin", password_env="PW"), url=base)
    lean = build_http_client(cluster, timeout=TIMEOUT, environ={"PW": PASSWORD})
    plain = httpx.AsyncClient(base_url=base, headers=lean.headers, timeout=TIMEOUT)
    ours = lean.build_request("POST", url, params=params, json={"key_id": "k"})
    theirs = plain.build_request("POST", url, params=params, json={"key_id": "k"})
    assert str(ours.url) == str(theirs.url)
    assert ours.headers.raw == theirs.headers.raw
    assert ours.content == theirs.content
    assert ours.extensions == theirs.extensions


def test_every_secret_read_is_handed_to_on_secret_and_nothing_else_is_told() -> None:
    """connect writes into no registry of its own: the caller's `on_secret` gets it."""
    handed: list[str] = []
    build_http_client(
        spec(TokenAuth(token_env="TK")),
        timeout=TIMEOUT,
        environ={"TK": PASSWORD},
        on_secret=handed.append,
    )
    build_http_client(
        spec(BasicAuth("admin", password_env="PW")),
        timeout=TIMEOUT,
        environ={"PW": "other-pw-1"},
        on_secret=handed.append,
    )
    assert handed == [PASSWORD, "other-pw-1"]
