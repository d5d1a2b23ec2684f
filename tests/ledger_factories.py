"""Small factories for ledger tests: runs, target rows and transitions."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from orchestrator.core.targets import Outcome, TargetKey, TargetState
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus, TargetRow, Transition
from orchestrator.ledger.store import Ledger

DAY = 86400.0


def make_run(
    run_id: str, *, mode: RunMode = RunMode.RUN, started_at: float | None = None
) -> RunRecord:
    """A run record with plausible values."""
    return RunRecord(
        run_id=run_id,
        mode=mode,
        inventory_path="fleet.yaml",
        inventory_sha256="ab" * 32,
        options={"concurrency": 64, "waves": "1,10%,100%"},
        operator="alice@jump01",
        started_at=time.time() if started_at is None else started_at,
        selection={"cluster": ["east-*"]},
    )


def key(text: str) -> TargetKey:
    return TargetKey.parse(text)


def step(row: TargetRow, event: str = "test.step", **detail: Any) -> Transition:
    """The transition that records `row`'s current state."""
    return Transition(row.run_id, row.key, time.time(), row.state, row.attempts, event, detail)


def rekeyed(row: TargetRow, *, at: float, key_id: str = "arn:aws:kms:key/new") -> TargetRow:
    """`row` finished with outcome rekeyed at `at`."""
    return replace(
        row,
        state=TargetState.DONE,
        outcome=Outcome.REKEYED.value,
        key_id_after=key_id,
        finished_at=at,
    )


def record_run(
    ledger: Ledger,
    run_id: str,
    outcomes: dict[str, tuple[Outcome, float]],
    *,
    mode: RunMode = RunMode.RUN,
) -> None:
    """A whole run: each `cluster/svm` finished with its outcome at its time."""
    started = min((at for _, at in outcomes.values()), default=time.time())
    ledger.create_run(make_run(run_id, mode=mode, started_at=started))
    rows = [TargetRow(run_id, key(text)) for text in outcomes]
    ledger.add_targets(rows)
    done = []
    for row in rows:
        outcome, at = outcomes[str(row.key)]
        final = replace(
            row,
            state=TargetState.DONE,
            outcome=outcome.value,
            key_id_after=f"key-{run_id}",
            finished_at=at,
        )
        done.append((final, step(final, f"target.{outcome.value}")))
    ledger.write(done)


def open_ledger(tmp_path: Path) -> Ledger:
    return Ledger.open(tmp_path / "ledger.db")


def active_runs(ledger: Ledger) -> list[RunRecord]:
    """The ledger's ACTIVE runs, newest first (running now, or crashed)."""
    return [run for run in ledger.list_runs() if run.status is RunStatus.ACTIVE]


def integrity_problems(path: Path) -> list[str]:
    """What `PRAGMA integrity_check` and `foreign_key_check` report on the ledger file at
    `path` (its own read-only connection); empty when sound."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        checks = [row[0] for row in conn.execute("PRAGMA integrity_check")]
        problems = [] if checks == ["ok"] else checks
        for row in conn.execute("PRAGMA foreign_key_check"):
            problems.append(f"{row[0]} row {row[1]}: dangling reference to {row[2]}")
        return problems
    finally:
        conn.close()
