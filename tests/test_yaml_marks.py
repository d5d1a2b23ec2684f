"""The inventory's YAML through libyaml's parser gives what PyYAML's own gives.

`parse_yaml` composes with `yaml.CSafeLoader` (libyaml) when it can, and with PyYAML's
pure-Python parser otherwise and for every error. These tests hold the two equal (the data,
every node's marks, the duplicate keys) wherever the fast one is used, and prove that the
texts the two treat differently, and every error, go to PyYAML's parser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.config import yaml_marks
from orchestrator.config.yaml_marks import ParsedYaml, YamlSyntaxError, parse_yaml

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "inventories").rglob("*.yaml"))

pytestmark = pytest.mark.skipif(
    yaml_marks._C_LOADER is None, reason="PyYAML was built without libyaml"
)


def _outcome(parse: Any, text: str) -> tuple[Any, ...]:
    try:
        parsed: ParsedYaml = parse(text)
    except (yaml.YAMLError, YamlSyntaxError):
        return ("error",)
    return ("ok", parsed.data, parsed.marks, parsed.duplicate_keys)


def _libyaml(text: str) -> ParsedYaml:
    assert yaml_marks._C_LOADER is not None
    return yaml_marks._parse_with(yaml_marks._C_LOADER, text)


def _assert_same_where_fast(text: str) -> None:
    """Where `parse_yaml` would use libyaml and libyaml accepts the text, PyYAML's parser
    accepts it too, with the same data, marks and duplicates."""
    if yaml_marks._NOT_FOR_LIBYAML.search(text) is not None:
        return
    try:
        fast = _outcome(_libyaml, text)
    except yaml_marks._MarkedElsewhere:
        return  # an empty scalar: parsed by PyYAML
    if fast[0] == "ok":
        assert fast == _outcome(yaml_marks._parse_python, text), repr(text)


def test_every_shipped_inventory_parses_the_same_with_libyaml() -> None:
    assert SHIPPED
    for path in SHIPPED:
        text = path.read_text(encoding="utf-8-sig")
        _assert_same_where_fast(text)
        assert _outcome(parse_yaml, text) == _outcome(yaml_marks._parse_python, text), path


TRICKY = [
    "a: 1\na: 2\n",  # duplicate keys
    "base: &b {x: 1, y: [1, 2]}\nuse:\n  <<: *b\n  y: 3\n",  # anchors, merge
    "- a\n- 'b: c'\n- \"d\\u00e9\"\n- é: ü\n",
    "k: >-\n  folded\n  text\n",  # goes to PyYAML (`>`)
    "k: |\n  literal\n",  # goes to PyYAML (`|`)
    "x: [1, {a: b}, [c]]\ny: {}\nz: []\n",
    "# comment\n\n\na:   b   # trailing\n",
    "a:\n  - b:\n      c: d\n    e: f\n",
    "'quoted key': 1\n\"other\": 2\n? complex\n: 3\n",
    "",
    "---\na: 1\n...\n",
    "a: 1\r\nb: 2\r\n",
    "---",  # an empty document: libyaml marks its null on line 2
    "--- # only a comment",
    "%YAML 1.1\n---",
    "a:",
    "x: 1\ny: ",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_documents_parse_the_same(text: str) -> None:
    _assert_same_where_fast(text)
    assert _outcome(parse_yaml, text) == _outcome(yaml_marks._parse_python, text)


YAMLISH = " \n\r:-[]{},#&*'\"%@`abc01é<\\.=~_/\u00a0\u2028\x85"


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.text(alphabet=YAMLISH, max_size=50))
def test_random_text_parses_the_same_wherever_libyaml_is_used(text: str) -> None:
    _assert_same_where_fast(text)


_LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12))
_DOCS = st.recursive(
    _LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(_DOCS, st.integers(0, 200), st.text(alphabet=" :-#'\"&*\n[]{},", max_size=4), st.booleans())
def test_mutated_documents_parse_the_same(doc: Any, at: int, insert: str, flow: bool) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True, default_flow_style=flow)
    _assert_same_where_fast(text)
    _assert_same_where_fast(text[:at] + insert + text[at:])


@pytest.mark.parametrize(
    "text", ["a: b\tc\n", "k: |#\n  x\n", "a: !\n", "? \n", "a: \ufeffb\n", "a: \x00\n"]
)
def test_texts_the_parsers_treat_differently_go_to_pyyaml(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of these parses differently (or only) under libyaml: never asked."""

    def refuse(*args: object) -> None:
        raise AssertionError("libyaml was asked")

    monkeypatch.setattr(yaml_marks, "_parse_with", refuse)
    assert _outcome(parse_yaml, text) == _outcome(yaml_marks._parse_python, text)


@pytest.mark.parametrize("text", ["---", "[a:\n,]", "a:\n", "x: 1\ny:"])
def test_a_document_with_an_empty_scalar_is_parsed_by_pyyaml(text: str) -> None:
    """libyaml may mark an empty value elsewhere ("---", "[a:\\n,]"): never its marks."""
    with pytest.raises(yaml_marks._MarkedElsewhere):
        _libyaml(text)
    assert _outcome(parse_yaml, text) == _outcome(yaml_marks._parse_python, text)


def test_a_plain_inventory_is_composed_by_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "inventories" / "minimal.yaml").read_text()
    expected = yaml_marks._parse_python(text)

    def refuse(text: str) -> ParsedYaml:
        raise AssertionError("PyYAML's parser was asked")

    monkeypatch.setattr(yaml_marks, "_parse_python", refuse)
    assert parse_yaml(text) == expected


@pytest.mark.parametrize(
    "text", ["a: [1, 2\n", "a: b: c\n", "a: 'x\n", "- a\nb: c\n", "a: *missing\n", "x\n---\ny\n"]
)
def test_errors_keep_pyyaml_s_wording(text: str) -> None:
    """libyaml refuses these too; the message and mark are PyYAML's, as before."""
    with pytest.raises(YamlSyntaxError) as fast:
        parse_yaml(text)
    with pytest.raises(YamlSyntaxError) as reference:
        yaml_marks._parse_python(text)
    assert (fast.value.problem, fast.value.mark) == (reference.value.problem, reference.value.mark)
