"""Build one `httpx.AsyncClient` per cluster: base URL, auth, TLS and timeouts.

Secrets are read here, at connection time, and only here: the inventory holds the names
of environment variables, the paths of files and the argv of secret commands
(`ontap/secret_command.py`). A missing secret raises `UserError`
naming the variable or file, never a value.

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
from collections.abc import Generator, Mapping
from pathlib import Path

import httpx

from orchestrator import __version__
from orchestrator.core.inventory import BasicAuth, CertAuth, ClusterSpec, TlsSettings, TokenAuth
from orchestrator.errors import UserError
from orchestrator.observe.redaction import register_secret
from orchestrator.ontap.secret_command import command_secret

USER_AGENT = f"ontap-rekey/{__version__}"

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
) -> httpx.AsyncClient:
    """An AsyncClient for `spec`: auth set, TLS verified unless the inventory says not.

    `transport` replaces the network (tests, the in-process simulator); auth still
    applies. Raises `UserError` when a secret or a certificate file cannot be read.
    """
    env = os.environ if environ is None else environ
    ssl_context = build_ssl_context(spec)
    return httpx.AsyncClient(
        base_url=spec.base_url,
        auth=_auth(spec, env),
        verify=ssl_context,
        timeout=timeout,
        limits=limits or DEFAULT_LIMITS,
        transport=transport,
        headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        # Never send credentials elsewhere: no redirects, no proxies or .netrc from the
        # environment (the tool talks only to the management addresses in the inventory).
        follow_redirects=False,
        trust_env=False,
    )


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
            raise UserError(
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
        raise UserError(
            f"{cluster}: the private key {auth.client_key} is encrypted; "
            "use an unencrypted key file readable only by this user (auth.client_key)"
        )

    try:
        context.load_cert_chain(auth.client_cert, auth.client_key, password=no_passphrase)
    except (OSError, ssl.SSLError) as exc:
        raise UserError(
            f"{cluster}: cannot load the client certificate {auth.client_cert} with key "
            f"{auth.client_key} (auth.client_cert/client_key): {_reason(exc)}"
        ) from None


def _auth(spec: ClusterSpec, env: Mapping[str, str]) -> httpx.Auth | None:
    auth = spec.auth
    if isinstance(auth, BasicAuth):
        return httpx.BasicAuth(auth.username, _secret(_password(spec.name, auth, env)))
    if isinstance(auth, TokenAuth):
        return BearerAuth(_secret(_token(spec.name, auth, env)))
    return None  # CertAuth: the TLS handshake authenticates


def _secret(value: str) -> str:
    """Register a secret the moment it is read, so no log line or report can show it."""
    register_secret(value)
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
    raise UserError(f"{cluster}: auth has a username but no password_env, _file or _command")


def _token(cluster: str, auth: TokenAuth, env: Mapping[str, str]) -> str:
    if auth.token_command is not None:
        return command_secret(
            cluster,
            auth.token_command,
            timeout_s=auth.command_timeout_s,
            field="auth.token_command",
        )
    if auth.token_env is None:
        raise UserError(f"{cluster}: token auth without token_env or token_command")
    return _env_secret(cluster, auth.token_env, "auth.token_env", env)


def _env_secret(cluster: str, name: str, field: str, env: Mapping[str, str]) -> str:
    value = env.get(name)
    if not value:
        state = "is empty" if value == "" else "is not set"
        raise UserError(f"{cluster}: environment variable {name} ({field}) {state}")
    return value


def _file_secret(cluster: str, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        # `from None`: a decode error's text would quote bytes of the secret.
        raise UserError(
            f"{cluster}: cannot read the password file {path} (auth.password_file): {_reason(exc)}"
        ) from None
    # Editors add one trailing newline; anything else is part of the password.
    secret = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
    if not secret:
        raise UserError(f"{cluster}: the password file {path} (auth.password_file) is empty")
    return secret


def _reason(exc: BaseException) -> str:
    """A short reason that never quotes file content."""
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__ if not str(exc) else str(exc)
