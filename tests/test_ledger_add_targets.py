"""`Ledger.add_targets` binds only each row's non-NULL columns (issue 16, the plan phase at
100,000 targets): what the ledger stores must be byte for byte what binding every column
stored, rowids and value types included."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.ledger.records import TargetRow
from orchestrator.ledger.schema import TARGET_COLUMNS
from orchestrator.ledger.store import _WITH_DEFAULT, Ledger, _target_params
from tests.ledger_factories import make_run

_EVERY_COLUMN = (
    f"INSERT OR IGNORE INTO targets ({', '.join(TARGET_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in TARGET_COLUMNS)})"
)
_STORED = (
    "SELECT rowid, "
    + ", ".join(f"{column}, typeof({column})" for column in TARGET_COLUMNS)
    + " FROM targets ORDER BY rowid"
)

_text = st.text(st.characters(codec="utf-8"), max_size=8)
_maybe_text = st.none() | _text
_maybe_float = st.none() | st.floats(allow_nan=False, allow_infinity=False)
_facts = st.dictionaries(_text, st.none() | st.booleans() | st.integers() | _text, max_size=4)


@st.composite
def _rows(draw: st.DrawFn) -> TargetRow:
    return TargetRow(
        run_id=draw(st.sampled_from(["r1", "r2"])),
        key=TargetKey(
            draw(st.sampled_from(["c1", "c2"])), draw(st.sampled_from(["s1", "s2", "-"]))
        ),
        state=draw(st.sampled_from(list(TargetState))),
        outcome=draw(_maybe_text),
        reason=draw(_maybe_text),
        config_uuid=draw(_maybe_text),
        key_id_before=draw(_maybe_text),
        key_id_intended=draw(_maybe_text),
        key_id_after=draw(_maybe_text),
        job_uuid=draw(_maybe_text),
        attempts=draw(st.integers(0, 5)),
        wave=draw(st.none() | st.integers(1, 3)),
        priority=draw(st.integers(-3, 3)),
        error_code=draw(_maybe_text),
        error_message=draw(_maybe_text),
        error_class=draw(_maybe_text),
        error_hint=draw(_maybe_text),
        intent_at=draw(_maybe_float),
        started_at=draw(_maybe_float),
        finished_at=draw(_maybe_float),
        facts=draw(_facts),
        evidence=draw(_facts),
        cluster_uuid=draw(_maybe_text),
        provider=draw(_maybe_text),
        operation=draw(_maybe_text),
    )


def _open(path: Path) -> Ledger:
    ledger = Ledger.open(path)
    for run_id in ("r1", "r2"):
        ledger.create_run(make_run(run_id))
    return ledger


def _stored(ledger: Ledger) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in ledger._conn.execute(_STORED).fetchall()]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(_rows(), max_size=12), min_size=1, max_size=3))
def test_add_targets_stores_what_binding_every_column_stored(
    tmp_path_factory: Any, batches: list[list[TargetRow]]
) -> None:
    """Rows with any mix of NULL columns, a target repeated in a batch or across batches
    (the first row recorded stays): the same rows, rowids and types as the old insert."""
    folder = tmp_path_factory.mktemp("add")
    new, old = _open(folder / "new.db"), _open(folder / "old.db")
    try:
        for rows in batches:
            new.add_targets(rows)
            with old._transaction() as conn:
                conn.executemany(_EVERY_COLUMN, [_target_params(row) for row in rows])
        assert _stored(new) == _stored(old)
    finally:
        new.close()
        old.close()


def test_add_targets_keeps_the_rows_order_across_column_sets(tmp_path: Path) -> None:
    """Rows whose NULL columns differ, interleaved: inserted in the order given (rowids in
    the rows' order), not grouped by their columns."""
    ledger = _open(tmp_path / "state.db")
    rows = [
        TargetRow("r1", TargetKey("c1", f"s{index}"), job_uuid="job" if index % 2 else None)
        for index in range(6)
    ]
    ledger.add_targets(rows)
    stored = ledger._conn.execute("SELECT svm, job_uuid FROM targets ORDER BY rowid").fetchall()
    assert [tuple(row) for row in stored] == [(row.key.svm, row.job_uuid) for row in rows]
    ledger.close()


def test_only_the_columns_with_a_non_null_default_are_never_omitted(tmp_path: Path) -> None:
    """An omitted column takes its DEFAULT: only where that is NULL is omitting a None the
    same as binding it (a column given a DEFAULT later must join `_WITH_DEFAULT`)."""
    ledger = Ledger.open(tmp_path / "state.db")
    columns = ledger._conn.execute("PRAGMA table_info(targets)").fetchall()
    ledger.close()
    assert {row["name"] for row in columns if row["dflt_value"] is not None} == _WITH_DEFAULT
    assert {row["name"] for row in columns} == set(TARGET_COLUMNS)


def test_a_row_of_an_unknown_run_still_fails_the_whole_batch(tmp_path: Path) -> None:
    """The foreign key holds with the narrower statements: nothing of the batch lands."""
    ledger = _open(tmp_path / "state.db")
    rows = [TargetRow("r1", TargetKey("c1", "s1")), TargetRow("ghost", TargetKey("c1", "s2"))]
    with pytest.raises(sqlite3.IntegrityError):
        ledger.add_targets(rows)
    assert ledger._conn.execute("SELECT COUNT(*) FROM targets").fetchone()[0] == 0
    ledger.close()
