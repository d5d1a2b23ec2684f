"""A run's TLS flag and a plan's estimate are record fields, not run options (issue 14);
a plan is orchestrated by the engine (engine/plan_run.py) and its verdicts have a type."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import TargetKey, Verdict
from orchestrator.engine.plan_run import execute_plan
from orchestrator.engine.runner import RunRequest
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import PlanEstimate, RunMode, TargetRow
from orchestrator.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from orchestrator.ledger.store import Ledger
from orchestrator.observe.reports import build_report
from tests.ledger_factories import make_run
from tests.simfleet import FAST, PASSWORD_ENV, scenario, sim_fleet

ESTIMATE = {"targets": 3, "waves": [1, 2], "job_estimate_s": 5.0, "estimated_s": 10.0}


def _v4_ledger(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_version ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for migration in MIGRATIONS[:4]:
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, 'v', 0)", (migration.version,))
    return conn


def _insert_run(
    conn: sqlite3.Connection, run_id: str, mode: str, options: dict[str, object]
) -> None:
    conn.execute(
        "INSERT INTO runs VALUES (?, ?, NULL, 'f.yaml', 'ab', ?, '{}', 'me', 1, 2, 'finished')",
        (run_id, mode, json.dumps(options)),
    )


def test_a_v4_ledger_s_flag_and_estimate_move_out_of_the_options(tmp_path: Path) -> None:
    """Migration 5: what a v4 ledger kept among the options reads back as fields, and the
    options that stay are exactly RunOptions (resume's `from_json` accepts them)."""
    path = tmp_path / "ledger.db"
    options = RunOptions().to_json()
    conn = _v4_ledger(path)
    _insert_run(conn, "plan", "plan", options | {"estimate": ESTIMATE})
    _insert_run(conn, "listed", "run", options | {"tls_verify_disabled": ["c2", "c1"]})
    _insert_run(conn, "every", "run", options | {"tls_verify_disabled": True})
    _insert_run(conn, "plain", "run", options)
    for svm, cluster in (("svm1", "b"), ("svm2", "a"), ("svm3", "b")):
        conn.execute(
            "INSERT INTO targets (run_id, cluster, svm, state, attempts, priority, facts)"
            " VALUES ('every', ?, ?, 'pending', 0, 0, '{}')",
            (cluster, svm),
        )
    conn.close()
    with Ledger.open(path) as ledger:
        plan, listed, every, plain = (
            ledger.get_run(r) for r in ("plan", "listed", "every", "plain")
        )
    assert plan.estimate == PlanEstimate(3, (1, 2), 5.0, 10.0)
    assert (listed.tls_verify_disabled, every.tls_verify_disabled) == (("c1", "c2"), ("a", "b"))
    assert (plain.tls_verify_disabled, plain.estimate, listed.estimate) == ((), None, None)
    for run in (plan, listed, every, plain):
        assert run.options == options
        assert RunOptions.from_json(run.options) == RunOptions()
    with sqlite3.connect(path) as raw:
        assert raw.execute("SELECT MAX(version) FROM schema_version").fetchone() == (
            SCHEMA_VERSION,
        )


def test_the_record_fields_survive_the_ledger_round_trip(tmp_path: Path) -> None:
    estimate = PlanEstimate(1, (1,), 5.0, 5.0)
    record = replace(make_run("r1"), tls_verify_disabled=("c1",), estimate=estimate)
    with Ledger.open(tmp_path / "state.db") as ledger:
        ledger.create_run(record)
        assert ledger.get_run("r1") == record


def test_a_row_s_verdict_is_typed_and_only_a_plan_s() -> None:
    row = TargetRow("r1", TargetKey("c1", "svm1"))
    assert TargetRow("p", row.key, outcome="ready").verdict is Verdict.READY
    assert TargetRow("p", row.key, outcome="not_ready").verdict is Verdict.NOT_READY
    assert TargetRow("r1", row.key, outcome="rekeyed").verdict is None
    assert row.verdict is None


@pytest.mark.anyio
async def test_the_engine_records_a_plan_with_its_estimate_and_verdicts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plan's record holds its estimate as a field (options hold only options); its
    rows are verdicts; report.json still lists the estimate under the run's options."""
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    sim = sim_fleet(2, 2, scenario=scenario())
    request = RunRequest(sim.inventory, Selection(), FAST, RunMode.PLAN)
    with Ledger.open(tmp_path / "state.db") as ledger:
        result = await execute_plan(request, AsyncLedger(ledger), sim.transport())
        stored = ledger.get_run(result.run.run_id)
        report = build_report(stored, ledger.targets(stored.run_id), [])
    assert sum(sim.rekeys().values()) == 0  # a plan POSTs nothing
    assert (stored.mode, stored.estimate, stored) == (RunMode.PLAN, result.estimate, result.run)
    assert result.estimate.targets == 4 and sum(result.estimate.waves) == 4
    assert "estimate" not in stored.options
    assert RunOptions.from_json(stored.options) == FAST
    assert {row.verdict for row in result.rows} == {Verdict.READY}
    assert report["run"]["options"]["estimate"] == result.estimate.to_json()
