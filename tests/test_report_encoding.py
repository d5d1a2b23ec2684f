"""report.json's encoder writes exactly `json.dumps(value, indent=2, ensure_ascii=False)`."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from orchestrator.observe.reports import encoding

ODD_STRING = 'q"uote \\ back\nnew\ttab \x00 \x1f é ☃ \U0001f600 \u2028'
SCALARS: list[Any] = [None, True, False, 0, -7, 10**30, 1.5, -0.0, 1e-9, 3e300, "", ODD_STRING]
SPECIALS: list[Any] = [
    float("nan"),
    float("inf"),
    -float("inf"),
    (1, "two"),  # a tuple: the standard encoder writes a list
    {1: "int key", None: "none key", 2.5: "float key", False: "bool key"},
    {"nested": ({"x": 1},)},
]


def _random_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.4:
        return rng.choice(SCALARS + SPECIALS if roll < 0.05 else SCALARS)
    if roll < 0.7:
        return {
            f"k{i}{ODD_STRING[i]}": _random_value(rng, depth + 1) for i in range(rng.randint(0, 4))
        }
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def _standard(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("value", SCALARS + SPECIALS + [{}, [], {"a": {}}, {"a": []}, [[]]])
def test_each_kind_of_value_is_encoded_as_the_standard_encoder_does(value: Any) -> None:
    """Scalars, odd strings, NaN/Infinity, tuples, non-str keys, empty containers."""
    assert encoding.encode(value) == _standard(value)
    assert encoding.encode([value, {"v": value}], 0) == _standard([value, {"v": value}])


def test_random_documents_encode_as_the_standard_encoder_does() -> None:
    """5,000 random nested documents: `encode` and `lines` (joined) are the standard text."""
    rng = random.Random(16)
    for _ in range(5000):
        value = {"head": _random_value(rng, 0), "targets": [_random_value(rng, 1) for _ in "abc"]}
        assert encoding.encode(value) == _standard(value)
        pieces = list(encoding.lines(value))
        assert "".join(pieces) == _standard(value)
        assert all(piece.endswith("\n") for piece in pieces[:-1])  # blocks end at a line break


def test_lines_of_an_object_with_odd_keys_fall_back_to_one_piece() -> None:
    """A top-level object the streamed path does not handle is still the standard text."""
    values: list[dict[Any, Any]] = [{}, {1: [1, 2]}, {"a": [], "b": [1]}]
    for value in values:
        assert "".join(encoding.lines(value)) == _standard(value)
