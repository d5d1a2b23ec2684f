"""report.json's text: `json.dumps(value, indent=2, ensure_ascii=False)`, byte for byte, faster.

With `indent` the standard library encodes in pure Python, one generator frame and one
chunk per value (~1.4 million chunks at 10,000 targets, a third of the report phase).
This encoder builds each container's text with one join, strings through the same C
`encode_basestring` the standard encoder uses, and hands anything outside plain JSON
types (non-str keys, subclasses, tuples, other objects) to the standard encoder, so
the text is always the standard one. `tests/test_report_encoding.py` compares the two.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from json.encoder import encode_basestring  # the C one (ensure_ascii=False)
from typing import Any

INDENT = "  "
_STANDARD = json.JSONEncoder(indent=2, ensure_ascii=False)
_SCALARS: dict[object, str] = {None: "null", True: "true", False: "false"}


def encode(value: Any, level: int = 0) -> str:
    """`value` as indented JSON text nested `level` containers deep (its first line unindented)."""
    kind = type(value)
    if kind is str:
        text: str = encode_basestring(value)
        return text
    if kind is dict:
        return _object(value, level) if value else "{}"
    if kind is list:
        return _array(value, level) if value else "[]"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):  # the standard spells NaN, Infinity
        return float.__repr__(value)
    if value is None or kind is bool:
        return _SCALARS[value]
    return _standard(value, level)


def lines(value: dict[str, Any]) -> Iterator[str]:
    """`encode(value)` as pieces that each end with a newline (the last one without), a
    top-level list a member at a time: report.json is written as it is encoded."""
    if not value or any(type(key) is not str for key in value):
        yield encode(value)
        return
    yield "{\n"
    last = len(value) - 1
    for index, (key, item) in enumerate(value.items()):
        comma = "" if index == last else ","
        head = f"{INDENT}{encode_basestring(key)}: "
        if type(item) is list and item:
            yield head + "[\n"
            yield from _items(item)
            yield f"{INDENT}]{comma}\n"
        else:
            yield f"{head}{encode(item, 1)}{comma}\n"
    yield "}"


def _items(value: list[Any]) -> Iterator[str]:
    pad = INDENT * 2
    last = len(value) - 1
    for index, item in enumerate(value):
        yield f"{pad}{encode(item, 2)}{'' if index == last else ','}\n"


def _object(value: dict[Any, Any], level: int) -> str:
    inner = level + 1
    parts: list[str] = []
    heads = _HEADS
    for key, item in value.items():  # scalars inline: most members of a report are
        if type(key) is not str:
            return _standard(value, level)  # the standard encoder converts or rejects such keys
        head = heads.get(key) or _head(key)
        kind = type(item)
        if kind is str:
            parts.append(head + encode_basestring(item))
        elif item is None:
            parts.append(head + "null")
        elif kind is int:
            parts.append(head + int.__repr__(item))
        else:
            parts.append(head + encode(item, inner))
    pad = INDENT * inner
    return f"{{\n{pad}" + f",\n{pad}".join(parts) + f"\n{INDENT * level}}}"


# A member's key as encoded, with its colon: a report repeats a few dozen keys 100,000
# times each (~2 million encodings saved at 100,000 targets). Bounded: a document with
# many distinct keys (facts) encodes the rest as it goes.
_HEADS: dict[str, str] = {}
_HEADS_MAX = 4096


def _head(key: str) -> str:
    head = encode_basestring(key) + ": "
    if len(_HEADS) < _HEADS_MAX:
        _HEADS[key] = head
    return head


def _array(value: list[Any], level: int) -> str:
    pad = INDENT * (level + 1)
    inner = level + 1
    body = f",\n{pad}".join([encode(item, inner) for item in value])
    return f"[\n{pad}{body}\n{INDENT * level}]"


def _standard(value: Any, level: int) -> str:
    """The standard encoder's text, re-indented: JSON text has no newline inside a string,
    so every newline is a line break the nesting shifts right."""
    return _STANDARD.encode(value).replace("\n", "\n" + INDENT * level)
