"""Keep secrets out of every log line, whatever the code that logged it did.

Two independent nets, because either alone has holes:

- by key: a value under a secret-ish key (`password`, `token`, `authorization`, ...) is
  replaced wholesale, at any depth of nested dicts and lists;
- by value: every secret the connection layer read (`register_secret`) is scrubbed from
  every string, wherever it slipped in (an exception message, a URL, a repr of a request),
  and so are HTTP credentials in header form (`Basic ...`, `Bearer ...`) and PEM private
  key blocks, which a registered password never matches literally.

Log events take a fast path through the same rules (`redact_processor`): one search of all
their plain string values at once tells whether any of them holds something to scrub; only
then is each value scrubbed. The answer is the same as scrubbing every value
(`redact_processor_reference`, and tests/test_logging_fast_path.py proves it).
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

# Every match of `scrub_text`'s rules contains one of these literals: a PEM key block's
# `PRIVATE KEY-----`, a credential header's scheme, or a registered secret itself. A text
# with none of them is left as it is; looking for literals (`in`) is ~20x faster than
# running the rules' regular expressions over a text that has nothing to scrub.
_ALWAYS = ("PRIVATE KEY-----", "Basic", "Bearer", "Negotiate", "Digest")
# Up to this many secrets are looked for one by one (`in`); more, by one regex.
_LITERALS_AT_MOST = 16
# A separator for joining texts before one look: it is not a word character (`\b` holds
# where a text starts) and no rule's match contains it, unless a registered secret does
# (then a look may say "maybe" wrongly, and the exact path runs: slower, never wrong).
_JOIN = "\x00"

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
# What `may_need_scrubbing` looks for: literals (with `in`), and the secrets' regex when
# there are too many of them for `in`. One tuple, replaced whole: a thread reading it while
# a secret is registered sees the old pair or the new one, never half of each.
_lookout: tuple[tuple[str, ...], re.Pattern[str] | None] = (_ALWAYS, None)


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
        _set_lookout(ordered)


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    global _pattern  # noqa: PLW0603
    with _lock:
        _secrets.clear()
        _pattern = None
        _set_lookout([])


def _set_lookout(secrets: list[str]) -> None:
    """What `may_need_scrubbing` looks for, given the registered secrets' forms."""
    global _lookout  # noqa: PLW0603 - rebuilt with the registry, under its lock
    few = len(secrets) <= _LITERALS_AT_MOST
    _lookout = (_ALWAYS + tuple(secrets), None) if few else (_ALWAYS, _pattern)


def is_secret_key(key: object) -> bool:
    """Whether a value stored under `key` is a secret by name alone."""
    if type(key) is str:
        known = _secret_keys.get(key)
        if known is None:
            known = _SECRET_KEY.search(key) is not None
            if len(_secret_keys) < _KEYS_CACHED:
                _secret_keys[key] = known
        return known
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


# Keys are a small set of field names, asked about on every line: each answer is kept
# (bounded, should anything log data as keys).
_KEYS_CACHED = 4096
_secret_keys: dict[str, bool] = {}


def scrub_text(text: str) -> str:
    """`text` with registered secrets, credential headers and private keys replaced.

    A text with nothing to scrub (most are) is returned after a look for literals, without
    running the rules' regular expressions over it (the report's texts, every log value
    that the fast path of `redact_processor` sends here)."""
    return scrub_text_reference(text) if may_need_scrubbing([text]) else text


def scrub_text_reference(text: str) -> str:
    """Every rule applied: what `scrub_text` must equal."""
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


def may_need_scrubbing(texts: list[str]) -> bool:
    """False only when `scrub_text` would return every one of `texts` unchanged.

    One look over the texts joined: whatever a rule would replace in one text is in the
    joined string too.
    """
    joined = _JOIN.join(texts)
    literals, many = _lookout
    if many is not None and many.search(joined) is not None:
        return True
    for literal in literals:  # noqa: SIM110 - `any()` over a generator costs twice as much
        if literal in joined:
            return True
    return False


_PLAIN = frozenset({int, float, bool, type(None)})  # `redact` returns these as they are


def redact_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: `redact` over the whole event (keys and values).

    The same event dict as `redact_processor_reference` (changed in place): the values under
    secret keys replaced, every other value redacted; but the event's texts are looked at
    once, all together, and scrubbed one by one only when that look finds something.
    """
    secret_keys = _secret_keys_among(tuple(event_dict))
    if secret_keys is None:  # internals (`_record`): the reference keeps them last
        return redact_processor_reference(_logger, _method, event_dict)
    texts: list[str] = []
    deep: list[str] = []
    for key, value in event_dict.items():
        kind = type(value)
        if kind is str:
            texts.append(value)
        elif kind not in _PLAIN:
            deep.append(key)
    if may_need_scrubbing(texts):
        return redact_processor_reference(_logger, _method, event_dict)
    for key in deep:
        event_dict[key] = redact(event_dict[key])
    for key in secret_keys:
        event_dict[key] = REDACTED
    return event_dict


def _secret_keys_among(keys: tuple[str, ...]) -> tuple[str, ...] | None:
    """The secret ones of an event's keys, or None if a key is an internal one (`_...`).
    Events come from a few call sites: the answer is kept per set of keys (bounded)."""
    try:
        return _key_sets[keys]
    except KeyError:
        pass
    answer: tuple[str, ...] | None = tuple(key for key in keys if is_secret_key(key))
    if any(type(key) is not str or key.startswith("_") for key in keys):
        answer = None
    if len(_key_sets) < _KEYS_CACHED:
        _key_sets[keys] = answer
    return answer


_key_sets: dict[tuple[str, ...], tuple[str, ...] | None] = {}


def redact_processor_reference(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """`redact` over every key and value, one by one: what `redact_processor` must equal."""
    return {
        key: REDACTED if is_secret_key(key) else redact(value)
        for key, value in event_dict.items()
        if not key.startswith("_")  # structlog/stdlib internals (`_record`) are not rendered
    } | {key: value for key, value in event_dict.items() if key.startswith("_")}
