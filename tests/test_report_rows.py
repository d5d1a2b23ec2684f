"""The reports' reader (`ledger/report_rows.py`) returns the full readers' rows, without
`evidence` and `detail`, in the same order, on a real SQLite ledger."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from orchestrator.ledger import report_rows
from orchestrator.ledger.records import RunRecord, TargetRow, Transition
from orchestrator.ledger.store import Ledger
from tests.synthetic_run import make_rows, make_run


def test_report_rows_are_the_full_rows_without_evidence_and_detail(tmp_path: Path) -> None:
    run = make_run()
    rows, steps = make_rows(run)
    rows = [
        replace(row, evidence={"how": "post"}, facts={"version": "9.14.1"} if index % 2 else {})
        for index, row in enumerate(rows)
    ]
    steps = [replace(step, detail={"job_uuid": f"j{index}"}) for index, step in enumerate(steps)]
    with Ledger.open(tmp_path / "state.db") as ledger:
        targets, transitions = _recorded_and_read(ledger, run, rows, steps)
        assert targets == [replace(row, evidence={}) for row in ledger.targets(run.run_id)]
        assert transitions == [replace(t, detail={}) for t in ledger.transitions(run.run_id)]
    assert any(row.facts for row in targets)  # facts are read (the reports show them)
    assert len(transitions) == len(steps) > 0
    by_key = {row.key: row.key for row in targets}
    assert all(step.key is by_key[step.key] for step in transitions)  # one key object each


def test_report_rows_hold_each_repeated_text_once(tmp_path: Path) -> None:
    """SQLite and `json.loads` hand out a new string per row and column; the reports'
    rows share one object per distinct text (cluster names, outcomes, facts keys and
    values, event names), with the values unchanged (the test above)."""
    run = make_run()
    rows, steps = make_rows(run)
    rows = [replace(row, facts={"version": "9.14.1", "region": "us-east-1"}) for row in rows]
    with Ledger.open(tmp_path / "state.db") as ledger:
        targets, transitions = _recorded_and_read(ledger, run, rows, steps)

    def distinct(texts: list[str]) -> int:
        return len({id(text) for text in texts})

    assert distinct([row.key.cluster for row in targets]) == len({r.key.cluster for r in rows})
    assert distinct([row.outcome or "" for row in targets if row.outcome]) == len(
        {row.outcome for row in targets if row.outcome}
    )
    assert distinct([row.key_id_before or "" for row in targets]) == 1  # "key-old" each
    assert distinct([key for row in targets for key in row.facts]) == 2
    assert distinct([row.facts["version"] for row in targets]) == 1
    assert distinct([step.event for step in transitions]) == len({s.event for s in transitions})


def _recorded_and_read(
    ledger: Ledger, run: RunRecord, rows: list[TargetRow], steps: list[Transition]
) -> tuple[list[TargetRow], list[Transition]]:
    """`rows` and `steps` recorded in `ledger`, then read back by the reports' reader."""
    ledger.create_run(run)
    ledger.add_targets(rows)
    by_key_row = {row.key: row for row in rows}
    ledger.write([(by_key_row[step.key], step) for step in steps])
    targets = report_rows.targets(ledger, run.run_id)
    return targets, report_rows.transitions(ledger, run.run_id, targets)
