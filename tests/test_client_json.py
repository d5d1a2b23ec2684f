"""The ONTAP client's JSON decoding (issue 16): `json.loads`'s answer, faster."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.ontap.client import _decode_json

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32-be"])


def outcome(content: bytes) -> object:
    try:
        return ("ok", json.loads(content))
    except ValueError as exc:
        return ("error", type(exc))


def ours(content: bytes) -> object:
    try:
        return ("ok", _decode_json(content))
    except ValueError as exc:
        return ("error", type(exc))


@settings(max_examples=400, deadline=None)
@given(value=JSONISH, encoding=ENCODINGS, ascii_only=st.booleans())
def test_any_document_in_any_encoding_decodes_as_json_loads_does(
    value: object, encoding: str, ascii_only: bool
) -> None:
    content = json.dumps(value, ensure_ascii=ascii_only).encode(encoding, "surrogatepass")
    assert ours(content) == outcome(content)


@settings(max_examples=400, deadline=None)
@given(
    prefix=st.sampled_from([b"{", b"[", b"{\x00", b"[\x00\x00", b" ", b"\xef\xbb\xbf{", b""]),
    rest=st.binary(max_size=12),
)
def test_any_bytes_decode_or_fail_as_json_loads_does(prefix: bytes, rest: bytes) -> None:
    """Garbage, NULs, broken UTF-8, lone surrogates (`\\xed\\xa0\\x80`): the same result or
    the same kind of error (both are ValueErrors: the client's PROTOCOL error)."""
    for content in (prefix + rest, prefix + b'"\xed\xa0\x80"' + rest, prefix + b"]"):
        assert ours(content) == outcome(content)
