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

Whether a text needs scrubbing at all is the redaction module's own look
(`may_need_scrubbing`: literals before any regular expression), the one `scrub_text`
takes; the rendered texts go through `scrub_text` itself.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from orchestrator.observe import redaction
from orchestrator.observe.redaction import REDACTED, is_secret_key, may_need_scrubbing, redact

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
    return not texts or not may_need_scrubbing(texts)


class CleanStream:
    """Whether a text read a piece at a time has, so far, nothing `scrub_text` would change.

    A piece is looked at alone and with the end of the text before it: a literal the
    look is for can span pieces, but it is never longer than `reach()`, so it lies inside
    that window. Nothing found in any piece or window: nothing in the whole text.
    """

    def __init__(self) -> None:
        self._reach = reach()
        self._tail = ""

    def clean(self, piece: str) -> bool:
        """Take the next piece; False once the text (this piece included) may need scrubbing."""
        window = self._tail + piece[: self._reach]
        if may_need_scrubbing([piece]) or may_need_scrubbing([window]):
            return False
        self._tail = (self._tail + piece)[-self._reach :]
        return True


def reach() -> int:
    """At least the length of anything `may_need_scrubbing` looks for: the fixed literals, and
    every registered secret (each one is an alternative in the pattern's source text)."""
    secrets: re.Pattern[str] | None = redaction._pattern
    longest = max(len(literal) for literal in _RULE_LITERALS)
    return max(longest, len(secrets.pattern) if secrets is not None else 0)


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
