"""Fuzzing `ontap-rekey validate`: whatever the file holds, exit 0 or 2 and a clean message.

Hypothesis writes random YAML structures, mutated copies of `inventories/minimal.yaml` and
random bytes to a file and feeds it to `orchestrator.cli.main(["validate", path])`. The
command must never fail with an internal error (exit 1) or print a traceback.
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import main

MINIMAL = Path(__file__).resolve().parent.parent / "inventories" / "minimal.yaml"
BASE: dict[str, Any] = yaml.safe_load(MINIMAL.read_text())
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KEYS = st.sampled_from(
    ["version", "clusters", "defaults", "groups", "name", "host", "auth", "svms", "tls",
     "key_id", "per_cluster", "tags", "retry", "username", "password_env", "password_file",
     "verify", "ca_bundle", "include_cluster_scope", "all", "<<", "", "x"]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["all", "1", "prod-01", "*", "-", "1%", "alias/x", "~", "null", "0x1f"]),
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=25,
)


def _validate(content: bytes, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("ONTAP_PASSWORD", "s3cret")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "inventory.yaml"
        path.write_bytes(content)
        code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert code in (0, 2), (code, err, content[:400])
    assert "Traceback" not in err + out, err
    assert "internal error" not in err, err
    if code == 2:
        assert err.strip(), "exit 2 without a message"
        assert all(len(line) < 2000 for line in err.splitlines())


def _dump(document: Any) -> bytes:
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False).encode()


@st.composite
def mutated_minimal(draw: st.DrawFn) -> Any:
    """minimal.yaml with a few values replaced, deleted or added at random places."""
    document: Any = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        node = document
        path: list[Any] = []
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            path.append(key)
            parent, node = node, node[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if not path:
            if isinstance(document, dict):
                document[draw(KEYS)] = draw(TREES)
            continue
        if action == "replace":
            parent[path[-1]] = draw(TREES)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(KEYS)] = draw(TREES)
        else:
            parent.append(draw(TREES))
    return document


@FUZZ
@given(document=TREES)
def test_random_yaml_structures(document: Any, monkeypatch: Any, capsys: Any) -> None:
    _validate(_dump(document), monkeypatch, capsys)


@FUZZ
@given(document=mutated_minimal())
def test_mutated_minimal_inventory(document: Any, monkeypatch: Any, capsys: Any) -> None:
    _validate(_dump(document), monkeypatch, capsys)


@FUZZ
@given(content=st.binary(max_size=300))
def test_random_bytes(content: bytes, monkeypatch: Any, capsys: Any) -> None:
    _validate(content, monkeypatch, capsys)


@FUZZ
@given(
    prefix=st.sampled_from([MINIMAL.read_bytes(), b"version: 1\nclusters:\n"]),
    cut=st.integers(0, 400),
    junk=st.binary(max_size=40),
)
def test_truncated_and_spliced_text(
    prefix: bytes, cut: int, junk: bytes, monkeypatch: Any, capsys: Any
) -> None:
    _validate(prefix[:cut] + junk + prefix[cut:], monkeypatch, capsys)


def test_minimal_is_valid(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    _validate(MINIMAL.read_bytes(), monkeypatch, capsys)
    monkeypatch.setenv("ONTAP_PASSWORD", "s3cret")
    assert main(["validate", str(MINIMAL)]) == 0
