"""The lean request path of `OntapHttpClient` (issue 16) against httpx's own.

The lean path builds the URL from the base URL's parsed form, reuses one set of headers
per body length, encodes the JSON body once and sends without httpx's auth and redirect
generators. Each test holds one of those to what httpx itself does for the same call,
and the pins fail when the httpx internals the lean path leans on change (then: re-read
httpx's `AsyncClient.send`, `Request`/`Response` and `URL`, adjust `ontap/connect.py` and
`ontap/transport.py`, and these tests).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.inventory import BasicAuth, ClusterSpec, TlsSettings
from orchestrator.ontap import connect
from orchestrator.ontap.connect import OntapHttpClient, build_http_client

PASSWORD = "Tr0ub4dor&3-secret"
TIMEOUT = httpx.Timeout(5.0)
App = Callable[[httpx.Request], httpx.Response]


def lean_and_plain(app: App, base: str = "https://c1:443") -> tuple[httpx.AsyncClient, ...]:
    """The product's client and a plain httpx client with the same configuration."""
    cluster = ClusterSpec(
        name="c1",
        base_url=base,
        auth=BasicAuth("admin", password_env="PW"),
        tls=TlsSettings(),
        key_id="k",
    )
    lean = build_http_client(
        cluster, timeout=TIMEOUT, transport=httpx.MockTransport(app), environ={"PW": PASSWORD}
    )
    plain = httpx.AsyncClient(
        base_url=base,
        headers=lean.headers,
        timeout=TIMEOUT,
        transport=httpx.MockTransport(app),
        follow_redirects=False,
        trust_env=False,
    )
    return lean, plain


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def same_request(ours: httpx.Request, theirs: httpx.Request, *, read: bool = True) -> None:
    assert ours.method == theirs.method
    assert str(ours.url) == str(theirs.url)
    assert ours.url.raw_path == theirs.url.raw_path
    assert ours.url == theirs.url
    assert ours.headers.raw == theirs.headers.raw
    assert ours.extensions == theirs.extensions
    if read:  # a redirect's next request keeps the stream unread
        assert ours.content == theirs.content


def test_the_lean_path_is_active_on_the_installed_httpx() -> None:
    """A pin: the lean URL and response fall back to httpx's own parsing when httpx's
    internal forms change; this fails then, so the fallback is never silent."""
    from orchestrator.ontap import transport

    assert connect._LEAN_URLS
    assert transport._LEAN_RESPONSES


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE", "get"])
@pytest.mark.parametrize("body", [None, {"key_id": "k"}, {"key_id": "ключ €", "n": [1, None]}])
@pytest.mark.parametrize(
    ("base", "url", "params"),
    [
        ("https://c1:443", "/api/cluster", {"fields": "name,uuid,version"}),
        ("https://c1:8443", "/api/security/aws-kms", {"uuid": "a|b|c", "fields": "x,y"}),
        ("https://c1/proxy/", "/api/cluster/jobs", {"description": "POST /api/x y & z=1"}),
        ("https://c1", "/api/security/aws-kms/a%2fb%2F/rekey-external", {"return_timeout": "0"}),
        ("https://127.0.0.1:8443", "/api/a b/./c/../d", None),  # httpx rewrites these
        ("https://[::1]:8443", "/api/x", {"svm.name": "vs1"}),
        ("https://c1", "/api/security/key-stores?start.index=40", None),
    ],
)
def test_lean_request_matches_httpx_for_every_method_and_body(
    method: str,
    body: Any,
    base: str,
    url: str,
    params: dict[str, str] | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """URL, header order and values, body bytes and timeout: what httpx builds; and
    httpx built it only for the paths it would rewrite (the lean path took the rest)."""
    lean, plain = lean_and_plain(lambda r: httpx.Response(200), base)
    theirs = plain.build_request(method, url, params=params, json=body)
    delegated: list[str] = []
    original = httpx.AsyncClient.build_request

    def spy(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> httpx.Request:
        delegated.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "build_request", spy)
    ours = lean.build_request(method, url, params=params, json=body)
    same_request(ours, theirs)
    rewritten = " " in url or "?" in url
    assert delegated == (["OntapHttpClient"] if rewritten else [])


PATH_CHARS = st.sampled_from([*"abcZ09-._~!$&'()*+,;=:@/%? #[]é|\\\"", "%2f", "%41", ".."])


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(["https://c1", "https://c1:8443/", "http://h/p/q/", "https://[::1]"]),
    path=st.lists(PATH_CHARS, max_size=12).map(lambda parts: "/" + "".join(parts)),
    params=st.none() | st.dictionaries(st.sampled_from(["a", "f.x", "u v"]), st.text(max_size=8)),
)
def test_the_lean_url_is_the_url_httpx_parses(
    base: str, path: str, params: dict[str, str] | None
) -> None:
    """Any path below the base URL, any parameters: the URL built without parsing is the
    one httpx parses from the full text (or the lean path declines and httpx builds it)."""
    lean, plain = lean_and_plain(lambda r: httpx.Response(200), base)
    try:
        theirs = plain.build_request("GET", path, params=params)
    except Exception as exc:  # whatever httpx refuses, the lean path refuses
        with pytest.raises(type(exc)):
            lean.build_request("GET", path, params=params)
        return
    same_request(lean.build_request("GET", path, params=params), theirs)


def test_the_headers_follow_a_change_of_the_client_headers() -> None:
    """The per-client header sets are rebuilt when the client's headers change."""
    lean, plain = lean_and_plain(lambda r: httpx.Response(200))
    lean.build_request("GET", "/api/cluster")
    lean.headers["X-Trace"] = "1"
    plain.headers["X-Trace"] = "1"
    same_request(
        lean.build_request("GET", "/api/cluster"), plain.build_request("GET", "/api/cluster")
    )
    lean.headers = {"Content-Type": "text/plain"}  # one httpx would not add again
    plain.headers = {"Content-Type": "text/plain"}
    ours = lean.build_request("POST", "/api/x", json={"a": 1})
    same_request(ours, plain.build_request("POST", "/api/x", json={"a": 1}))


# -- the lean send --------------------------------------------------------------------------


class Chunks(httpx.AsyncByteStream):
    """A body that arrives in pieces, not read by the transport."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b" 1}"


def answers(request: httpx.Request) -> httpx.Response:
    """A cluster that answers each path its own way."""
    path = request.url.path
    if path == "/moved":
        return httpx.Response(301, headers={"Location": "/api/elsewhere"})
    if path == "/broken-redirect":
        return httpx.Response(302, headers={"Location": "https://h:x/"})
    if path == "/streamed":
        return httpx.Response(200, stream=Chunks())
    if path == "/down":
        raise httpx.ConnectError("refused")  # without a request: httpx attaches it
    if path == "/empty":
        return httpx.Response(204)
    return httpx.Response(200, json={"path": path}, headers={"Set-Cookie": "s=1"})


async def both(path: str, method: str = "GET") -> tuple[Any, Any]:
    """The outcome of one request through the lean client and through httpx's send."""
    lean, plain = lean_and_plain(answers)
    outcomes: list[Any] = []
    async with lean, plain:
        for client in (lean, plain):
            try:
                outcomes.append(await client.request(method, path, json=None))
            except httpx.HTTPError as exc:
                outcomes.append(exc)
    return outcomes[0], outcomes[1]


def same_response(ours: httpx.Response, theirs: httpx.Response) -> None:
    assert ours.status_code == theirs.status_code
    assert ours.headers.raw == theirs.headers.raw
    assert ours.content == theirs.content
    assert ours.history == theirs.history == []
    assert ours.is_closed and theirs.is_closed
    assert ours.request.url == theirs.request.url
    assert ours.http_version == theirs.http_version
    if theirs.next_request is None:
        assert ours.next_request is None
    else:
        assert ours.next_request is not None
        same_request(ours.next_request, theirs.next_request, read=False)


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/api/cluster", "/moved", "/streamed", "/empty"])
async def test_the_lean_send_returns_what_httpx_send_returns(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain answer, a redirect (named in `next_request`, not followed), a streamed
    body (read, `elapsed` set), an empty 204: the same response either way, and the lean
    client never entered httpx's auth and redirect machinery."""
    entered: list[str] = []
    original = httpx.AsyncClient._send_handling_auth

    async def spy(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> httpx.Response:
        entered.append(type(self).__name__)
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "_send_handling_auth", spy)
    ours, theirs = await both(path)
    same_response(ours, theirs)
    if path == "/streamed":  # read here, so timed as httpx times it
        assert isinstance(ours.elapsed, timedelta)
    assert entered == ["AsyncClient"]  # only the plain client went through httpx's send


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/down", "/broken-redirect"])
async def test_the_lean_send_raises_what_httpx_send_raises(path: str) -> None:
    """A transport error gets its request attached; a redirect to a malformed Location
    is a RemoteProtocolError, as in httpx (the ONTAP client decides `maybe_sent` from it)."""
    ours, theirs = await both(path, "POST")
    assert type(ours) is type(theirs)
    assert isinstance(ours, httpx.RequestError) and isinstance(theirs, httpx.RequestError)
    assert str(ours) == str(theirs)
    assert ours.request.url == theirs.request.url


@pytest.mark.anyio
async def test_the_lean_send_logs_the_line_httpx_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="httpx"):
        await both("/api/cluster")
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines == ['HTTP Request: GET https://c1/api/cluster "HTTP/1.1 200 OK"'] * 2


@pytest.mark.anyio
async def test_a_closed_client_refuses_to_send() -> None:
    lean, _ = lean_and_plain(answers)
    await lean.aclose()
    with pytest.raises(RuntimeError, match="client has been closed"):
        await lean.get("/api/cluster")


@pytest.mark.anyio
async def test_an_auth_hooks_or_redirects_set_later_take_httpx_s_path() -> None:
    """The lean send is only for a client without them: set one, and httpx's own send
    runs it (the auth flow's header, the hook, the redirect followed)."""
    seen: list[httpx.Request] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers(request)

    lean, _ = lean_and_plain(app)
    hooked: list[str] = []

    async def hook(request: httpx.Request) -> None:
        hooked.append(request.url.path)

    async with lean:
        lean.auth = httpx.BasicAuth("other", "pw")
        await lean.get("/api/cluster")
        lean.auth = None  # type: ignore[assignment]  # httpx's setter takes None
        lean.event_hooks = {"request": [hook], "response": []}
        await lean.get("/api/cluster")
        lean.event_hooks = {}
        lean.follow_redirects = True
        followed = await lean.get("/moved")
    assert seen[0].headers["Authorization"] == basic("other", "pw")
    assert hooked == ["/api/cluster"]
    assert followed.history and followed.url.path == "/api/elsewhere"


@pytest.mark.anyio
async def test_a_client_built_with_its_own_auth_never_takes_the_lean_path() -> None:
    seen: list[httpx.Request] = []

    def app(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with OntapHttpClient(
        base_url="https://c1",
        auth=httpx.BasicAuth("u", "p"),
        transport=httpx.MockTransport(app),
        trust_env=False,
    ) as client:
        await client.get("/api/cluster")
    assert seen[0].headers["Authorization"] == basic("u", "p")
