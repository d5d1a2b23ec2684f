"""The report document with secrets removed: `redaction.redact(document)`, without the copy.

`redact` copies every dict, list and string of a document (~340,000 values at 10,000
targets) to change, nearly always, nothing. Here a part of the document is first
checked: it is left as it is when it holds only plain JSON values, no key that
`is_secret_key` names, and no string `scrub_text` would change; only a part that fails
the check goes through `redact`. So the result equals `redact(document)` in every case.

The strings are checked at once, joined by NUL: every match of a scrub rule inside one
string is also a match inside the joined text (a registered secret is a literal; a
credential header starts at a word boundary, which NUL keeps; a private key block runs
to its end marker or the end of the text), so no match in the joined text means no
string has one.

`scrub` is `scrub_text` for the large rendered texts (12 MB each of report.json and
report.html at 10,000 targets): the credential-header rule starts at a word boundary, so
its regular expression is tried at every position (~40 ms per MB, two thirds of the
report phase's scrubbing). Every match of it contains a scheme name and every match of
the private-key rule contains `PRIVATE KEY-----`; a text with none of these literals
(`in`: ~1 ms per MB) needs only the registered secrets replaced.
`tests/test_report_redaction.py` holds `scrub` to `scrub_text`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from orchestrator.observe import redaction
from orchestrator.observe.redaction import REDACTED, is_secret_key, redact, scrub_text

_secret_key = lru_cache(maxsize=4096)(is_secret_key)  # a report has a few dozen distinct keys
# A literal in every match of the two fixed rules (see the module's docstring).
_RULE_LITERALS = ("PRIVATE KEY-----", "Basic", "Bearer", "Negotiate", "Digest")


def redacted(document: dict[str, Any]) -> dict[str, Any]:
    """`redact(document)` (equal in every case); parts that need nothing are not copied."""
    if is_clean(document):
        return document
    result: dict[str, Any] = {}
    for key, value in document.items():
        if _secret_key(key):
            result[key] = REDACTED
        elif type(value) is list:  # the targets: only the sections that need it are copied
            result[key] = [item if is_clean(item) else redact(item) for item in value]
        else:
            result[key] = value if is_clean(value) else redact(value)
    return result


def is_clean(value: Any) -> bool:
    """Whether `redact(value)` would equal `value` (plain JSON types only: a tuple, a
    subclass or another object counts as not clean, since `redact` converts it)."""
    texts: list[str] = []
    if not _plain(value, texts):
        return False
    return not texts or not needs_scrubbing("\0".join(texts))


def needs_scrubbing(text: str) -> bool:
    """Whether `scrub_text(text)` could differ from `text` (False: it cannot)."""
    if _fixed_rules_may_match(text):
        return True
    secrets: re.Pattern[str] | None = redaction._pattern
    return secrets is not None and secrets.search(text) is not None


def scrub(text: str) -> str:
    """`scrub_text(text)`, without the fixed rules' scans when `text` has none of their literals."""
    if _fixed_rules_may_match(text):
        return scrub_text(text)
    secrets: re.Pattern[str] | None = redaction._pattern  # what scrub_text applies last
    return secrets.sub(REDACTED, text) if secrets is not None else text


class CleanStream:
    """Whether a text read a piece at a time has, so far, nothing `scrub_text` would change.

    A piece is looked at alone and with the end of the text before it: a literal the
    look is for can span pieces, but it is never longer than `_reach()`, so it lies inside
    that window. Nothing found in any piece or window: nothing in the whole text.
    """

    def __init__(self) -> None:
        self._reach = _reach()
        self._tail = ""

    def clean(self, piece: str) -> bool:
        """Take the next piece; False once the text (this piece included) may need scrubbing."""
        if needs_scrubbing(piece) or needs_scrubbing(self._tail + piece[: self._reach]):
            return False
        self._tail = (self._tail + piece)[-self._reach :]
        return True


def _reach() -> int:
    """At least the length of anything `needs_scrubbing` looks for: the fixed literals, and
    every registered secret (each one is an alternative in the pattern's source text)."""
    secrets: re.Pattern[str] | None = redaction._pattern
    longest = max(len(literal) for literal in _RULE_LITERALS)
    return max(longest, len(secrets.pattern) if secrets is not None else 0)


def _fixed_rules_may_match(text: str) -> bool:
    return any(literal in text for literal in _RULE_LITERALS)


def _plain(value: Any, texts: list[str]) -> bool:
    """Collect the strings of `value` into `texts`; False at a secret key or a non-JSON type."""
    kind = type(value)
    if kind is str:
        texts.append(value)
        return True
    if kind is dict:
        for key, item in value.items():  # scalars inline: most members of a report are
            if _secret_key(key):
                return False
            inner = type(item)
            if inner is str:
                texts.append(item)
            elif item is not None and inner not in _SCALARS and not _plain(item, texts):
                return False
        return True
    if kind is list:
        return all(_plain(item, texts) for item in value)
    return value is None or kind in _SCALARS


_SCALARS = frozenset({int, float, bool})  # `redact` returns these as they are
