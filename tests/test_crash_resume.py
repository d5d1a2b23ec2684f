"""Issue 5 acceptance: SIGKILL / SIGINT a real `ontap-rekey run` subprocess, then `resume`.

A 10 x 50 fleet is served on loopback by `running_simulator` in this process (its ground
truth, `fleet.stats()`, is read directly); `run` and `resume` are subprocesses on an
inventory written for it. After every kill the ledger must pass `PRAGMA integrity_check`;
at the end every target has exactly one terminal outcome, the simulator accepted at most
one rekey per target, and every accepted rekey is `rekeyed` in the ledger.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.targets import Outcome, TargetState
from orchestrator.ledger.records import RunRecord, RunStatus, TargetRow, Transition
from orchestrator.ledger.store import Ledger
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator
from tests.ledger_factories import integrity_problems

pytestmark = pytest.mark.slow

CLUSTERS, SVMS = 10, 50
TARGETS = CLUSTERS * SVMS
KILLS = 10
SEED = 20261127
EXIT_TIMEOUT_S = 60.0

IN_FLIGHT = "SELECT count(*) FROM targets WHERE state NOT IN ('done', 'pending')"

SCENARIO = """
options:
  job_duration: {min_s: 0.05, max_s: 0.2}
faults:
  - {kind: drop_after, rate: 0.01}   # accepted, then the connection drops: settle
"""


@dataclass
class Setup:
    sim: Simulation
    inventory: Path
    db: Path
    tmp: Path
    env: dict[str, str]
    rounds: int = 0

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        self.rounds += 1
        tag = f"{self.rounds:02}-{args[0]}"
        stdout = (self.tmp / f"{tag}.out").open("wb")
        command = [
            sys.executable,
            "-m",
            "orchestrator",
            *args,
            "--state",
            str(self.db),
            "--report-dir",
            str(self.tmp / "reports" / tag),
            "--log-file",
            str(self.tmp / f"{tag}.jsonl"),
        ]
        return subprocess.Popen(command, stdout=stdout, stderr=subprocess.STDOUT, env=self.env)

    def run(self) -> subprocess.Popen[bytes]:
        # a short request timeout keeps the settle window (2x) short after each kill
        return self.spawn("run", str(self.inventory), "--yes", "--request-timeout", "2")

    def resume(self, run_id: str) -> subprocess.Popen[bytes]:
        return self.spawn("resume", run_id)

    def output(self) -> str:
        """Every subprocess's output so far, for assertion messages."""
        return "\n".join(
            f"== {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.tmp.glob("*.out"))
        )


@contextmanager
def serving(tmp_path: Path, scenario: Scenario) -> Iterator[Setup]:
    """The CLUSTERS x SVMS fleet served under `scenario`, its inventory, a child's env."""
    spec = FleetSpec.generate(CLUSTERS, SVMS)
    with running_simulator(spec, scenario, seed=SEED) as sim:
        inventory = write_inventory(tmp_path / "inventory.yaml", spec, sim.urls, ca_bundle=None)
        env = dict(
            os.environ,
            ONTAP_SIM_PASSWORD="netapp-sim",
            ONTAP_REKEY_STDERR_LEVEL="error",
            NO_COLOR="1",
        )
        yield Setup(sim, inventory, tmp_path / "ledger.db", tmp_path, env)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    with serving(tmp_path, Scenario.from_yaml(SCENARIO)) as served:
        yield served


# -- reading the ledger while (or after) a child writes it -----------------------------------


def _count(db: Path, sql: str) -> int:
    """A read-only count (0 while the ledger or its tables do not exist yet)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def _transitions(db: Path) -> int:
    return _count(db, "SELECT count(*) FROM transitions")


def _check_integrity(db: Path) -> None:
    with Ledger.open(db) as ledger:
        assert integrity_problems(ledger.path) == []


def _the_run(db: Path) -> RunRecord | None:
    with Ledger.open(db) as ledger:
        runs = ledger.list_runs()
    assert len(runs) <= 1, runs
    return runs[0] if runs else None


def _rows_and_transitions(db: Path, run_id: str) -> tuple[list[TargetRow], list[Transition]]:
    with Ledger.open(db) as ledger:
        return ledger.targets(run_id), ledger.transitions(run_id)


def _wait(proc: subprocess.Popen[bytes], setup: Setup) -> int:
    try:
        return proc.wait(timeout=EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail(f"the child did not exit within {EXIT_TIMEOUT_S} s\n{setup.output()}")


def _wait_for_progress(db: Path, proc: subprocess.Popen[bytes], more_than: int) -> bool:
    """Poll until the ledger holds more than `more_than` transitions; False if the child
    exited first."""
    while _transitions(db) <= more_than:
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    return True


# -- the ground truth --------------------------------------------------------------------------


def _accepted_rekeys(sim: Simulation) -> dict[str, list[dict[str, Any]]]:
    stats = sim.fleet.stats()
    return {name: entry["rekeys"] for name, entry in stats["svms"].items()}


def _check_final(setup: Setup, run_id: str, *, exactly_one_done_transition: bool) -> dict[str, int]:
    """Every target done with one outcome; <= 1 rekey per target; accepted => rekeyed."""
    rows, transitions = _rows_and_transitions(setup.db, run_id)
    assert len(rows) == TARGETS
    assert len({row.key for row in rows}) == TARGETS
    not_done = [str(row.key) for row in rows if row.state is not TargetState.DONE]
    assert not_done == [], f"targets without a terminal outcome: {not_done[:10]}"
    assert all(row.outcome is not None for row in rows)
    # the audit trail: one `done` per target (with SIGINT, an `aborted` one reopened by
    # resume may have a second)
    dones = Counter(str(t.key) for t in transitions if t.state is TargetState.DONE)
    if exactly_one_done_transition:
        assert set(dones.values()) == {1}, {k: n for k, n in dones.items() if n != 1}
    else:
        assert len(dones) == TARGETS, f"{TARGETS - len(dones)} targets have no `done` transition"
    rekeys = _accepted_rekeys(setup.sim)
    twice = {name: entries for name, entries in rekeys.items() if len(entries) > 1}
    assert twice == {}, f"rekeyed more than once: {twice}"
    outcome = {str(row.key): row for row in rows}
    unverified: list[str] = []
    for name, entries in rekeys.items():
        if not entries:
            continue
        row = outcome[name]
        if row.outcome == Outcome.UNVERIFIED.value:
            unverified.append(f"{name}: {row.reason} {row.error_message}")
            continue
        assert row.outcome == Outcome.REKEYED.value, (
            f"{name}: the simulator accepted a rekey ({entries}) but the ledger says "
            f"{row.outcome} ({row.reason}, {row.error_message})"
        )
        assert entries[0]["outcome"] == "success"
        assert row.key_id_after == entries[0]["key_id"]
    # and the other way round: every `rekeyed` row has its one rekey in the simulator
    for name, row in outcome.items():
        if row.outcome == Outcome.REKEYED.value:
            assert len(rekeys[name]) == 1, name
    assert unverified == [], f"accepted rekeys left unverified: {unverified}"
    return dict(Counter(row.outcome or "" for row in rows))


# -- 1. SIGKILL at 10 seeded random moments ------------------------------------------------


def test_sigkill_at_ten_random_moments_then_resume(setup: Setup) -> None:
    rng = random.Random(SEED)
    run_id: str | None = None
    kills: list[str] = []
    while len(kills) < KILLS:
        before = _transitions(setup.db)
        proc = setup.run() if run_id is None else setup.resume(run_id)
        if rng.random() < 0.25:
            # early: during start-up, discovery or the settling of in-flight rows
            time.sleep(rng.uniform(0.05, 0.8))
            moment = "early"
        else:
            # mid-rotation: after this child's first ledger write, a random while later
            assert _wait_for_progress(setup.db, proc, before), (
                f"the child finished before kill {len(kills) + 1}\n{setup.output()}"
            )
            time.sleep(rng.uniform(0.0, 1.2))
            moment = "mid"
        assert proc.poll() is None, (
            f"the child exited ({proc.returncode}) before kill {len(kills) + 1}\n{setup.output()}"
        )
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=EXIT_TIMEOUT_S) == -signal.SIGKILL
        _check_integrity(setup.db)
        record = _the_run(setup.db)
        if record is not None:
            assert record.status is RunStatus.ACTIVE  # crashed: never closed
            run_id = record.run_id
        done = _count(setup.db, "SELECT count(*) FROM targets WHERE state = 'done'")
        in_flight = _count(setup.db, IN_FLIGHT)
        kills.append(f"{moment}: {done} done, {in_flight} in flight")
    print("kills:", *kills, sep="\n  ")
    assert run_id is not None, f"no run was ever recorded: {kills}"
    # the kills caught rekeys between intent and outcome: resume had to settle them
    assert any(not k.endswith(" 0 in flight") for k in kills), kills
    # before the last resume, some targets must still be open: the kills landed mid-run
    open_rows = _count(setup.db, "SELECT count(*) FROM targets WHERE state != 'done'")
    assert open_rows > 0, kills
    final = setup.resume(run_id)
    assert _wait(final, setup) == 0, setup.output()
    _check_integrity(setup.db)
    record = _the_run(setup.db)
    assert record is not None
    assert record.status is RunStatus.FINISHED
    totals = _check_final(setup, run_id, exactly_one_done_transition=True)
    assert totals == {Outcome.REKEYED.value: TARGETS}, (totals, kills)


# -- 2. SIGINT: drain in-flight rekeys, exit 130, resume finishes ---------------------------


def _run_until_rekeys_in_flight(setup: Setup, started: int) -> subprocess.Popen[bytes]:
    proc = setup.run()
    query = "SELECT count(*) FROM transitions WHERE event = 'attempt.started'"
    while _count(setup.db, query) < started:
        assert proc.poll() is None, setup.output()
        time.sleep(0.01)
    return proc


def test_sigint_drains_in_flight_rekeys_and_resume_finishes(setup: Setup) -> None:
    proc = _run_until_rekeys_in_flight(setup, started=60)
    proc.send_signal(signal.SIGINT)
    assert _wait(proc, setup) == 130, setup.output()
    _check_integrity(setup.db)
    record = _the_run(setup.db)
    assert record is not None
    assert record.status is RunStatus.INTERRUPTED
    rows, transitions = _rows_and_transitions(setup.db, record.run_id)
    posted = {t.key for t in transitions if t.event == "attempt.started"}
    assert posted, "the SIGINT came before any POST"
    by_key = {row.key: row for row in rows}
    assert len(by_key) == TARGETS
    # no in-flight rekey abandoned: every started target has its outcome in this run
    for key in posted:
        row = by_key[key]
        assert row.state is TargetState.DONE, f"{key} left {row.state}"
        assert row.outcome == Outcome.REKEYED.value, (key, row.outcome, row.reason)
    not_started = [row for key, row in by_key.items() if key not in posted]
    assert not_started, "the run finished before the SIGINT took effect"
    for row in not_started:
        assert row.state is TargetState.DONE
        assert (row.outcome, row.reason) == (Outcome.ABORTED.value, "interrupt"), row
    rekeys = _accepted_rekeys(setup.sim)
    assert {str(k) for k in posted} >= {n for n, e in rekeys.items() if e}
    final = setup.resume(record.run_id)
    assert _wait(final, setup) == 0, setup.output()
    totals = _check_final(setup, record.run_id, exactly_one_done_transition=False)
    assert totals == {Outcome.REKEYED.value: TARGETS}
    # the audit trail: drained targets ended once; interrupted ones `aborted`, then `rekeyed`
    _, transitions = _rows_and_transitions(setup.db, record.run_id)
    dones = Counter(t.key for t in transitions if t.state is TargetState.DONE)
    assert {dones[key] for key in posted} == {1}
    assert {dones[row.key] for row in not_started} == {2}
    # ground truth: exactly one rekey per target across run and resume
    assert {len(e) for e in _accepted_rekeys(setup.sim).values()} == {1}


def test_second_sigint_cancels_at_once_and_resume_finishes(setup: Setup) -> None:
    proc = _run_until_rekeys_in_flight(setup, started=60)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.15)
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    assert _wait(proc, setup) == 130, setup.output()
    log = (setup.tmp / "01-run.jsonl").read_text()
    assert '"action": "cancel"' in log, "the second SIGINT came too late to cancel"
    _check_integrity(setup.db)
    record = _the_run(setup.db)
    assert record is not None
    assert record.status is RunStatus.INTERRUPTED
    rows, _ = _rows_and_transitions(setup.db, record.run_id)
    assert len(rows) == TARGETS
    final = setup.resume(record.run_id)
    assert _wait(final, setup) == 0, setup.output()
    _check_integrity(setup.db)
    totals = _check_final(setup, record.run_id, exactly_one_done_transition=False)
    assert totals == {Outcome.REKEYED.value: TARGETS}
    assert {len(e) for e in _accepted_rekeys(setup.sim).values()} == {1}
