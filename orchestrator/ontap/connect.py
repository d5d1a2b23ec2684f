"""Build one `httpx.AsyncClient` per cluster: base URL, auth, TLS and timeouts.

Secrets are read here, at connection time, and only here: the inventory holds the names
of environment variables, the paths of files and the argv of secret commands
(`ontap/secret_command.py`). A missing secret raises `CredentialError`
naming the variable or file, never a value. Every secret is handed, the moment it is
read, to the `on_secret` callback (the command line wires the log redactor to it with
`set_secret_sink`): this layer knows nothing of logging.

Logging: httpx logs each request at INFO as method, URL and status; httpcore logs at
DEBUG the request as `<Request [b'POST']>` and the response status and headers (checked
in httpx 0.28 / httpcore 1.0 source: `httpx/_client.py`, `httpcore/_trace.py`,
`httpcore/_async/http11.py`). Neither ever logs request headers, so the Authorization
header cannot appear; `httpx.Headers.__repr__` masks it too. `tests/test_connect.py`
proves it over a real socket with DEBUG logging on. Credentials are never put in the URL.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import httpx

from orchestrator import __version__
from orchestrator.core.inventory import BasicAuth, CertAuth, ClusterSpec, TlsSettings, TokenAuth
from orchestrator.errors import CredentialError
from orchestrator.ontap.secret_command import command_secret
from orchestrator.ontap.transport import ClusterTransport

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
    """An `httpx.AsyncClient` that builds the usual request with one URL parse.

    httpx's `build_request` parses the relative URL, merges it into the base URL and
    parses again to add the query (~3 parses, each checking every character): a fifth
    of the client's CPU per request at fleet scale. The ONTAP client's requests are a
    path below the base URL plus string parameters and nothing else per request, so the
    full URL is written out as text and parsed once. Anything else (an absolute URL,
    per-request headers, cookies, timeouts or extensions) goes through httpx's own.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._prefix = str(self.base_url).rstrip("/")
        self._timeout_extension = {"timeout": self.timeout.as_dict()}

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
            and isinstance(url, str)
            and url.startswith("/")
            and not url.startswith("//")
            and timeout is httpx.USE_CLIENT_DEFAULT
            and (params is None or isinstance(params, dict))
        ):
            query = f"?{httpx.QueryParams(params)}" if params else ""
            if query and "?" in url:  # a next link carries its own query: let httpx merge
                return super().build_request(method, url, params=params, **body)
            return httpx.Request(
                method,
                self._prefix + url + query,
                headers=self.headers,
                extensions=dict(self._timeout_extension),
                **body,
            )
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
    if tls.ca_bundle is None:
        context = ssl.create_default_context()
    else:
        try:
            context = ssl.create_default_context(cafile=str(tls.ca_bundle))
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
