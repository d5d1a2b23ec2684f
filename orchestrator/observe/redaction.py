"""Keep secrets out of every log line, whatever the code that logged it did.

Two independent nets, because either alone has holes:

- by key: a value under a secret-ish key (`password`, `token`, `authorization`, ...) is
  replaced wholesale, at any depth of nested dicts and lists;
- by value: every secret the connection layer read (`register_secret`) is scrubbed from
  every string, wherever it slipped in (an exception message, a URL, a repr of a request),
  and so are HTTP credentials in header form (`Basic ...`, `Bearer ...`) and PEM private
  key blocks, which a registered password never matches literally.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from structlog.typing import EventDict, WrappedLogger

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(?:^|[_\-.])(?:password|passwd|passphrase|secret|token|authorization|"
    r"private_key|client_key|api_key|cookie|credentials?)$",
    re.IGNORECASE,
)
# Header-shaped credentials: the base64 of `user:password` never contains the password.
_AUTH_HEADER = re.compile(r"\b(Basic|Bearer|Negotiate|Digest)\s+[A-Za-z0-9+/=._~\-]{6,}")
_PEM_KEY = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.DOTALL
)

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register_secret(value: str) -> None:
    """Scrub `value` (and its URL- and base64-encoded forms) from every future log line."""
    if not value:
        return
    forms = {value, quote(value, safe=""), base64.b64encode(value.encode()).decode()}
    global _pattern  # noqa: PLW0603 - one process-wide registry, rebuilt on write only
    with _lock:
        _secrets.update(forms)
        # Longest first so a secret that contains another is replaced whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(secret) for secret in ordered))


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _pattern  # noqa: PLW0603
    with _lock:
        _secrets.clear()
        _pattern = None


def is_secret_key(key: object) -> bool:
    """Whether a value stored under `key` is a secret by name alone."""
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def scrub_text(text: str) -> str:
    """`text` with registered secrets, credential headers and private keys replaced."""
    text = _PEM_KEY.sub(REDACTED, text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


def redact(value: Any) -> Any:
    """A copy of `value` with secrets removed, recursing into mappings and sequences."""
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, bytes):
        return scrub_text(value.decode("utf-8", "replace"))
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    # Anything else is rendered by repr/str later: scrub that text now.
    return scrub_text(str(value))


def redact_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: `redact` over the whole event (keys and values)."""
    return {
        key: REDACTED if is_secret_key(key) else redact(value)
        for key, value in event_dict.items()
        if not key.startswith("_")  # structlog/stdlib internals (`_record`) are not rendered
    } | {key: value for key, value in event_dict.items() if key.startswith("_")}
