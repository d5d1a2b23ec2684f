"""A target row moved to its next state (engine/recorder.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.engine.recorder import row_with
from orchestrator.ledger.records import TargetRow

ROW = TargetRow(
    "run",
    TargetKey("c001", "svm01"),
    state=TargetState.INTENT,
    config_uuid="cfg",
    attempts=1,
    facts={"version": "9.14.1"},
    evidence={"accepted": True},
)


def _other(value: Any) -> Any:
    """A value of the field's kind that differs from `value`."""
    if isinstance(value, TargetState):
        return TargetState.DONE
    if isinstance(value, TargetKey):
        return TargetKey("c002", "svm02")
    if isinstance(value, dict):
        return {"other": 1}
    if isinstance(value, int):
        return value + 7
    return "changed"


@pytest.mark.parametrize("name", [field.name for field in dataclasses.fields(TargetRow)])
def test_a_row_with_one_field_changed_equals_dataclasses_replace(name: str) -> None:
    value, before = _other(getattr(ROW, name)), dict(ROW.__dict__)
    moved = row_with(ROW, **{name: value})
    assert moved == dataclasses.replace(ROW, **{name: value})
    assert getattr(moved, name) == value
    assert ROW.__dict__ == before  # the original is untouched
    assert type(moved) is TargetRow


def test_a_row_with_every_field_changed_equals_dataclasses_replace() -> None:
    changes = {field.name: _other(getattr(ROW, field.name)) for field in dataclasses.fields(ROW)}
    assert row_with(ROW, **changes) == dataclasses.replace(ROW, **changes)


def test_an_unknown_field_is_refused_as_replace_refuses_it() -> None:
    with pytest.raises(TypeError, match="statee"):
        row_with(ROW, statee=TargetState.DONE)


def test_a_moved_row_is_still_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        row_with(ROW, attempts=2).attempts = 3  # type: ignore[misc]


def test_target_rows_have_nothing_row_with_would_skip() -> None:
    """`row_with` copies the fields without calling `__init__`: valid only while a row
    has no `__post_init__` and every field is an `__init__` field."""
    assert not hasattr(TargetRow, "__post_init__")
    assert all(field.init for field in dataclasses.fields(TargetRow))
