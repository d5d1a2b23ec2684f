"""The report's redaction shortcut equals the redaction module's rules in every case:
`redacted(doc) == redact(doc)`, and a clean part is returned without a copy. (The rendered
texts go through `scrub_text` itself; its literal look is held to its rules in
tests/test_logging_fast_path.py.)"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.observe.redaction import (
    REDACTED,
    clear_secrets,
    redact,
    register_secret,
)
from orchestrator.observe.reports.redacted import is_clean, redacted

SECRET = 's3cr&t|pa"ss<word>'  # the characters the renderers escape, on purpose
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIB...\n-----END RSA PRIVATE KEY-----"
TEXTS = [
    "",
    "plain text, nothing to scrub",
    f"login failed: password was {SECRET}.",
    f"url-encoded: a%20b {base64.b64encode(SECRET.encode()).decode()}",
    "Authorization: Basic dXNlcjpwYXNzd29yZA== sent",
    "Bearer abc",  # too short to be a credential
    "Digest\tusername123456 and Negotiate",
    f"key: {PEM} then more",
    "-----BEGIN EC PRIVATE KEY-----\nno end marker",
    f"already {REDACTED} once",
    "BasicallyBearer words inside words",
]


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


def _document(message: str) -> dict[str, Any]:
    return {
        "run": {"options": {"retry": {"api_token": "t0k", "n": 3}}, "reason": message},
        "totals": {"targets": 2, "rekeyed": 1},
        "targets": [
            {"target": "c1/s1", "error": None, "facts": {"version": "9.14.1", "ok": True}},
            {"target": "c1/s2", "error": {"message": message}, "facts": {"nodes": ["n1"]}},
        ],
    }


@pytest.mark.parametrize("registered", [False, True])
@pytest.mark.parametrize("text", TEXTS)
def test_redacted_is_redact(text: str, registered: bool) -> None:
    """Whatever the message holds, the document equals `redact`'s copy of it."""
    if registered:
        register_secret(SECRET)
    document = _document(text)
    assert redacted(document) == redact(document)


def test_a_clean_document_is_not_copied_and_a_dirty_one_only_where_it_must_be() -> None:
    register_secret(SECRET)
    clean = _document("nothing here")
    del clean["run"]["options"]["retry"]["api_token"]
    assert redacted(clean) is clean
    dirty = _document(f"password was {SECRET}")
    result = redacted(dirty)
    assert result["targets"][0] is dirty["targets"][0]  # the clean target is shared
    assert result["targets"][1]["error"]["message"] == f"password was {REDACTED}"
    assert result["run"]["options"]["retry"]["api_token"] == REDACTED


@pytest.mark.parametrize(
    "value",
    [
        {"password": "x"},  # a secret key
        {"a": [{"client_key": 1}]},  # deep, whatever the value's type
        {"a": (1, 2)},  # a tuple: redact makes it a list
        {"a": b"bytes"},
        {"a": object()},
    ],
)
def test_what_redact_would_change_is_not_clean(value: Any) -> None:
    assert not is_clean(value)
    assert redacted({"part": value}) == redact({"part": value})


class _Text(str):
    """A str subclass: `redact` makes it a plain str, so it is never clean."""


_KEYS = st.sampled_from(["target", "error", "facts", "message", "password", "api_token", "n"])
_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from(["plain", f"has {SECRET}", "Bearer abcdefghijklmnop", "", "ok"]),
    st.builds(_Text, st.sampled_from(["plain", "x"])),
    st.tuples(st.integers()),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_VALUES, min_size=1, max_size=4))
def test_is_clean_on_documents_with_repeated_keys(values: list[Any]) -> None:
    """Keys learned clean from one part (the fast path: a dict's values looked at by type,
    in C) never make another part clean that `redact` would change, whatever the order."""
    register_secret(SECRET)
    for value in values * 2:  # the second time every key has been seen before
        if is_clean(value):
            assert redact(value) == value
            assert all(type(s) is str for s in _strings(value))
        assert redacted({"part": value}) == redact({"part": value})


def _strings(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def test_a_str_subclass_or_a_tuple_under_known_keys_is_not_clean() -> None:
    assert is_clean({"target": "a", "facts": {"n": 1}})  # every key now known clean
    assert not is_clean({"target": _Text("a"), "facts": {"n": 1}})
    assert not is_clean({"target": "a", "facts": {"n": (1,)}})
    assert not is_clean({"target": "a", "facts": {"n": 1, "password": "x"}})
