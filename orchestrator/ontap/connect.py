"""Build one `httpx.AsyncClient` per cluster: base URL, auth, TLS and timeouts.

Secrets are read here, at connection time, and only here: the inventory holds the names
of environment variables, the paths of files and the argv of secret commands
(`ontap/secret_command.py`). A missing secret raises `CredentialError`
naming the variable or file, never a value. Every secret is handed, the moment it is
read, to the `on_secret` callback (the command line wires the log redactor to it with
`set_secret_sink`): this layer knows nothing of logging.

Logging: httpx logs each request at INFO as method, URL and status (the lean send of
`OntapHttpClient` logs the same line on the same logger); httpcore (when a test puts it
under the client instead of `ontap/transport.py`, which logs nothing) logs at DEBUG the
request as `<Request [b'POST']>` and the response status and headers (checked
in httpx 0.28 / httpcore 1.0 source: `httpx/_client.py`, `httpcore/_trace.py`,
`httpcore/_async/http11.py`). Neither ever logs request headers, so the Authorization
header cannot appear; `httpx.Headers.__repr__` masks it too. `tests/test_connect.py`
proves it over a real socket with DEBUG logging on. Credentials are never put in the URL.
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
import time
from collections.abc import Callable, Generator, Mapping
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx

from orchestrator import __version__
from orchestrator.core.inventory import BasicAuth, CertAuth, ClusterSpec, TlsSettings, TokenAuth
from orchestrator.errors import CredentialError
from orchestrator.ontap.secret_command import command_secret
from orchestrator.ontap.transport import ClusterTransport, resuming_context

SecretSink = Callable[[str], None]
"""Called with each secret the moment it is read (e.g. to scrub it from every log line)."""

USER_AGENT = f"ontap-rekey/{__version__}"


def _ignore(_secret: str) -> None:
    """The sink until one is set: a library caller without logging has nothing to scrub."""


_sink: list[SecretSink] = [_ignore]  # one process-wide default, set by the command line


def set_secret_sink(sink: SecretSink) -> None:
    """The `on_secret` every `build_http_client` uses when its caller passes none."""
    _sink[0] = sink


# Idle connections expire before a typical server keep-alive timeout (Apache: 5 s), so a
# rekey POST is seldom sent on a socket the cluster is closing: that would make its fate
# uncertain for nothing.
DEFAULT_LIMITS = httpx.Limits(max_connections=32, max_keepalive_connections=8, keepalive_expiry=4.0)


class BearerAuth(httpx.Auth):
    """OAuth 2.0 bearer token (ONTAP 9.14+); its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "BearerAuth(<redacted>)"


def build_http_client(
    spec: ClusterSpec,
    *,
    timeout: httpx.Timeout,
    limits: httpx.Limits | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
    on_secret: SecretSink | None = None,
) -> httpx.AsyncClient:
    """An AsyncClient for `spec`: auth set, TLS verified unless the inventory says not.

    `transport` replaces the network (tests, the in-process simulator); auth still
    applies. `on_secret` (default: the sink `set_secret_sink` set) gets each secret read.
    Raises `CredentialError` when a secret or a certificate file cannot be read.
    """
    env = os.environ if environ is None else environ
    ssl_context = build_ssl_context(spec)
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    headers.update(_auth_headers(spec.base_url, _auth(spec, env, on_secret or _sink[0])))
    return OntapHttpClient(
        base_url=spec.base_url,
        headers=headers,
        timeout=timeout,
        transport=transport
        or ClusterTransport(
            ssl_context=ssl_context if spec.base_url.startswith("https") else None,
            limits=limits or DEFAULT_LIMITS,
        ),
        # Never send credentials elsewhere: no redirects, no proxies or .netrc from the
        # environment (the tool talks only to the management addresses in the inventory).
        follow_redirects=False,
        trust_env=False,
    )


class OntapHttpClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` with a lean path for the ONTAP client's usual request.

    The ONTAP client's requests are a path below the base URL, string parameters and an
    optional JSON body, sent with the client's own headers, no auth flow (the credentials
    are a default header: `_auth_headers`), no cookies, no event hooks and no redirects.
    For exactly those, httpx's general machinery was ~14 % of a fleet run's CPU (a GIL
    profile at 250 x 40): the URL parse (~47 us, checking every character), the headers
    copied and rebuilt with Host and the body's, the body encoded through `json=`, `send`
    running an auth generator and a redirect loop around the transport, the response body
    read again through httpx's decoder generators. Here the URL is built from the base
    URL's parsed form (`_lean_url`), the headers once per body length (`_lean_headers`),
    the body encoded once, `send` calls the transport directly (`_lean_send`) and the
    transport hands back its response already read. Anything else (an
    absolute URL, a next link with its own query, per-request headers, cookies, timeouts,
    extensions, an auth, hooks, redirects on, a stream) goes through httpx's own code.
    `tests/test_connect_lean.py` holds both paths to the same requests and responses.
    (One difference: the lean send does not mark the client "opened", so an `async with`
    after a request is not refused as httpx would; nothing here does that.)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        base = self.base_url
        self._timeout_extension = {"timeout": self.timeout.as_dict()}
        # The lean send needs the transport the client was given and nothing httpx would
        # choose per URL (mounts, proxies from the environment) or add (client params,
        # credentials in the URL, a non-default encoding).
        self._lean_transport: httpx.AsyncBaseTransport | None = kwargs.get("transport")
        self._lean_ok = (
            self._lean_transport is not None
            and not kwargs.get("mounts")
            and kwargs.get("proxy") is None
            and not kwargs.get("trust_env", True)
            and not self.params
            and not base.userinfo
            and kwargs.get("default_encoding", "utf-8") == "utf-8"
        )
        self._headers_seen: tuple[httpx.URL, list[tuple[bytes, bytes]]] | None = None
        self._header_sets: dict[int | None, httpx.Headers | None] = {}

    # ONTAP's REST API is stateless (credentials on every request): the client keeps no
    # cookies and never parses a Set-Cookie (httpx wraps each response for its cookie jar
    # otherwise: ~4 % of a fleet run's CPU). A jar passed to httpx is copied into a real
    # `CookieJar`, so the store itself is replaced here.
    @property
    def cookies(self) -> httpx.Cookies:
        return _NO_COOKIES

    @cookies.setter
    def cookies(self, _cookies: Any) -> None:
        """httpx's constructor sets its own jar: ignored, nothing is ever stored."""

    def build_request(  # type: ignore[override]
        self,
        method: str,
        url: httpx.URL | str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Any = None,
        cookies: Any = None,
        timeout: Any = httpx.USE_CLIENT_DEFAULT,
        extensions: Any = None,
        **body: Any,
    ) -> httpx.Request:
        plain = headers is None and cookies is None and extensions is None
        if (
            plain
            and timeout is httpx.USE_CLIENT_DEFAULT
            and isinstance(url, str)
            and (params is None or isinstance(params, dict))
            and all(value is None for key, value in body.items() if key != "json")
        ):
            request = self._lean_request(method, url, params, body.get("json"))
            if request is not None:
                return request
        return super().build_request(
            method,
            url,
            params=params,
            headers=headers,
            cookies=cookies,
            timeout=timeout,
            extensions=extensions,
            **body,
        )

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if (
            self._lean_ok
            and not stream
            and auth is httpx.USE_CLIENT_DEFAULT
            and follow_redirects is httpx.USE_CLIENT_DEFAULT
            and self.auth is None
            and not self.follow_redirects
            and not any(self.event_hooks.values())
            and not request.url.userinfo
        ):
            return await self._lean_send(request)
        return await super().send(
            request, stream=stream, auth=auth, follow_redirects=follow_redirects
        )

    def _lean_request(
        self, method: str, url: str, params: Mapping[str, str] | None, body: Any
    ) -> httpx.Request | None:
        """The request httpx would build for a path below the base URL, or None when
        the URL is not such a path as httpx would leave it (an absolute URL, `//host`, a
        next link with its own query, characters httpx escapes, dot segments) or the
        client's headers are not the usual ones."""
        if not _LEAN_URLS or not _plain_path(url):
            return None
        query = _query(params) if params else None
        method = method.upper()
        content = None if body is None else _encode_json(body)
        # Content-Length as httpx sets it: the body's, 0 for a POST without one, else none
        length = len(content) if content is not None else (0 if method in _BODY_METHODS else None)
        base = self.base_url
        headers = self._lean_headers(base, length)
        if headers is None:
            return None
        target = _lean_url(base, url, query)
        return _read(
            httpx.Request(
                method,
                target,
                headers=headers,
                stream=httpx.ByteStream(b"" if content is None else content),
                extensions=self._timeout_extension,  # `Request` copies it
            )
        )

    def _lean_headers(self, base: httpx.URL, length: int | None) -> httpx.Headers | None:
        """The headers httpx's `Request` ends up with, in its order: Host, the client's
        headers, and Content-Length (with Content-Type for a JSON body: the only body with
        a non-zero length here). Built once per body length and reused (`Request`
        copies them), rebuilt when the client's headers or base URL change; None when
        the client's own headers hold one of those (httpx would not add it again)."""
        current = self.headers.raw
        seen = self._headers_seen
        if seen is None or seen[0] is not base or seen[1] != current:
            self._headers_seen, self._header_sets = (base, current), {}
        try:
            return self._header_sets[length]
        except KeyError:
            pass
        if len(self._header_sets) >= 64:  # bodies of many lengths: keep it bounded
            self._header_sets.clear()
        headers: httpx.Headers | None = None
        if not any(name.lower() in _AUTO_HEADERS for name, _ in current):
            items = [(b"Host", base.netloc), *current]
            if length == 0:  # httpx puts its automatic "Content-Length: 0" after Host
                items.insert(1, (b"Content-Length", b"0"))
            elif length is not None:  # and a JSON body's own two headers last
                items.append((b"Content-Length", str(length).encode("ascii")))
                items.append((b"Content-Type", b"application/json"))
            headers = httpx.Headers(items)
        self._header_sets[length] = headers
        return headers

    async def _lean_send(self, request: httpx.Request) -> httpx.Response:
        """What httpx's `send` does for a request without auth, hooks or redirects, in
        one call: the transport, the response read, the log line, `next_request` on a
        redirect (httpx 0.28's `_send_single_request` and `_send_handling_redirects`)."""
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        assert self._lean_transport is not None
        start = time.perf_counter()
        try:
            response = await self._lean_transport.handle_async_request(request)
        except httpx.RequestError as exc:  # httpx's `request_context`
            exc.request = request
            raise
        response.request = request
        if _HTTPX_LOG.isEnabledFor(logging.INFO):  # its arguments cost more than the check
            _HTTPX_LOG.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        try:
            if response.has_redirect_location:  # not followed: httpx names the next request
                response.next_request = self._build_redirect_request(request, response)
            if not response.is_stream_consumed:  # another transport's streamed body
                await response.aread()
                response.elapsed = timedelta(seconds=time.perf_counter() - start)
        except BaseException:
            await response.aclose()
            raise
        return response


_HTTPX_LOG = logging.getLogger("httpx")  # the line httpx's `send` logs, kept as it was
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_AUTO_HEADERS = frozenset({b"host", b"content-length", b"content-type", b"transfer-encoding"})
# httpx 0.28's `json=` encoding (`httpx._content.encode_json`), with the encoder built once
_JSON_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _encode_json(body: Any) -> bytes:
    return _JSON_ENCODER.encode(body).encode("utf-8")


def _read(request: httpx.Request) -> httpx.Request:
    request.read()  # the body in memory, as httpx's `build_request` leaves it
    return request


@lru_cache(maxsize=512)
def _query_of(items: tuple[tuple[str, str], ...]) -> str:
    return str(httpx.QueryParams(items))


def _query(params: Mapping[str, str]) -> str:
    """`params` as httpx encodes them into a URL; the same few sets repeat per request
    (a read-back batch's `uuid=a|b|...` does not: it is not kept)."""
    items = tuple(params.items())
    try:
        if sum(len(value) for _, value in items) <= _CACHED_QUERY:
            return _query_of(items)
    except TypeError:  # a value that is not a string: encode it without the cache
        pass
    return str(httpx.QueryParams(items))


_CACHED_QUERY = 256  # characters of values at most


# A path httpx's URL parser leaves exactly as it is: only characters it never escapes in
# a path, escapes already made, and no `.` or `..` segment (which it would remove). No
# `?` or `#`: httpx splits those off.
_SAFE = r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*"  # written out as runs: 6x faster than (a|b)*
_PLAIN_PATH = re.compile(rf"/{_SAFE}(?:%[0-9A-Fa-f]{{2}}{_SAFE})*")
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|$)")


def _plain_path(url: str) -> bool:
    """An absolute path (not `//host`) that httpx's parser would leave as it is."""
    return (
        not url.startswith("//")
        and _PLAIN_PATH.fullmatch(url) is not None
        and ("/." not in url or _DOT_SEGMENT.search(url) is None)
    )


def _lean_url(base: httpx.URL, path: str, query: str | None) -> httpx.URL:
    """`base` with the plain `path` below its own path, and `query` (already encoded by
    httpx): the URL httpx's `build_request` merges and parses, without parsing.

    This leans on an httpx internal: a URL is its parsed form, the named tuple
    `URL._uri_reference` (httpx 0.23 to 0.28 at least); `_LEAN_URLS` says whether the
    installed httpx has it (without it, httpx builds every request itself).
    `tests/test_connect_lean.py` holds the result to httpx's own for any path and fails
    when that form changes.
    """
    reference = base._uri_reference
    full = reference.path.rstrip("/") + path
    url = httpx.URL.__new__(httpx.URL)
    url._uri_reference = reference._replace(path=full, query=query, fragment=None)
    return url


def _urls_are_named_tuples() -> bool:
    probe = getattr(httpx.URL("https://h/"), "_uri_reference", None)
    return isinstance(probe, tuple) and hasattr(probe, "_replace") and hasattr(probe, "path")


_LEAN_URLS = _urls_are_named_tuples()


def _auth_headers(base_url: str, auth: httpx.Auth | None) -> dict[str, str]:
    """The Authorization header `auth` puts on a request, computed once per cluster.

    Basic and bearer auth add the same header to every request and never answer a
    challenge, so the client sends it as a default header instead of running an auth
    flow per request (a generator and a request copy each time). The header is masked in
    `httpx.Headers` reprs as before, and, with redirects off and next links kept to the
    same origin, never goes to another host.
    """
    if auth is None:
        return {}
    request = next(auth.sync_auth_flow(httpx.Request("GET", base_url)))
    value = request.headers.get("Authorization")
    return {} if value is None else {"Authorization": value}


class _NoCookies(httpx.Cookies):
    """A cookie store that keeps nothing and parses nothing."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        return None


_NO_COOKIES = _NoCookies()


def build_ssl_context(spec: ClusterSpec) -> ssl.SSLContext:
    """The cluster's TLS context: verification on, its CA bundle, its client certificate.

    Without a `ca_bundle` the system trust store is used (where administrators install
    their own CAs; it also honours SSL_CERT_FILE / SSL_CERT_DIR).
    """
    if isinstance(spec.auth, CertAuth):  # its own context: it carries the client certificate
        context = _verifying_context(spec.name, spec.tls)
        _load_client_cert(spec.name, context, spec.auth)
        return context
    # Without a client certificate, clusters with the same trust settings share one
    # context: loading the system trust store costs ~30 ms of CPU and ~1 MB per context,
    # which a fleet of thousands of clusters paid once per cluster.
    key = (str(spec.tls.ca_bundle) if spec.tls.ca_bundle is not None else None, spec.tls.verify)
    shared = _SHARED_CONTEXTS.get(key)
    if shared is None:
        shared = _SHARED_CONTEXTS[key] = _verifying_context(spec.name, spec.tls)
    return shared


_SHARED_CONTEXTS: dict[tuple[str | None, bool], ssl.SSLContext] = {}


def _verifying_context(cluster: str, tls: TlsSettings) -> ssl.SSLContext:
    # ssl.create_default_context's settings, in a context that can resume TLS sessions
    if tls.ca_bundle is None:
        context = resuming_context()
    else:
        try:
            context = resuming_context(cafile=str(tls.ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            raise CredentialError(
                f"{cluster}: cannot load the CA bundle {tls.ca_bundle} (tls.ca_bundle): "
                f"{_reason(exc)}"
            ) from None
    if not tls.verify:  # only ever because the inventory says `tls: {verify: false}`
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _load_client_cert(cluster: str, context: ssl.SSLContext, auth: CertAuth) -> None:
    def no_passphrase() -> str:
        # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
        raise CredentialError(
            f"{cluster}: the private key {auth.client_key} is encrypted; "
            "use an unencrypted key file readable only by this user (auth.client_key)"
        )

    try:
        context.load_cert_chain(auth.client_cert, auth.client_key, password=no_passphrase)
    except (OSError, ssl.SSLError) as exc:
        raise CredentialError(
            f"{cluster}: cannot load the client certificate {auth.client_cert} with key "
            f"{auth.client_key} (auth.client_cert/client_key): {_reason(exc)}"
        ) from None


def _auth(spec: ClusterSpec, env: Mapping[str, str], on_secret: SecretSink) -> httpx.Auth | None:
    auth = spec.auth
    if isinstance(auth, BasicAuth):
        return httpx.BasicAuth(auth.username, _handed(_password(spec.name, auth, env), on_secret))
    if isinstance(auth, TokenAuth):
        return BearerAuth(_handed(_token(spec.name, auth, env), on_secret))
    return None  # CertAuth: the TLS handshake authenticates


def _handed(value: str, on_secret: SecretSink) -> str:
    """Hand a secret over the moment it is read, so no log line or report can show it."""
    on_secret(value)
    return value


def _password(cluster: str, auth: BasicAuth, env: Mapping[str, str]) -> str:
    if auth.password_env is not None:
        return _env_secret(cluster, auth.password_env, "auth.password_env", env)
    if auth.password_file is not None:
        return _file_secret(cluster, auth.password_file)
    if auth.password_command is not None:
        return command_secret(
            cluster,
            auth.password_command,
            timeout_s=auth.command_timeout_s,
            field="auth.password_command",
        )
    raise CredentialError(f"{cluster}: auth has a username but no password_env, _file or _command")


def _token(cluster: str, auth: TokenAuth, env: Mapping[str, str]) -> str:
    if auth.token_command is not None:
        return command_secret(
            cluster,
            auth.token_command,
            timeout_s=auth.command_timeout_s,
            field="auth.token_command",
        )
    if auth.token_env is None:
        raise CredentialError(f"{cluster}: token auth without token_env or token_command")
    return _env_secret(cluster, auth.token_env, "auth.token_env", env)


def _env_secret(cluster: str, name: str, field: str, env: Mapping[str, str]) -> str:
    value = env.get(name)
    if not value:
        state = "is empty" if value == "" else "is not set"
        raise CredentialError(f"{cluster}: environment variable {name} ({field}) {state}")
    return value


def _file_secret(cluster: str, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # `from None`: a decode error's text would quote bytes of the secret.
        raise CredentialError(
            f"{cluster}: cannot read the password file {path} (auth.password_file): {_reason(exc)}"
        ) from None
    # Editors add one trailing newline; anything else is part of the password.
    secret = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
    if not secret:
        raise CredentialError(f"{cluster}: the password file {path} (auth.password_file) is empty")
    return secret


def _reason(exc: BaseException) -> str:
    """A short reason that never quotes file content."""
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__ if not str(exc) else str(exc)
