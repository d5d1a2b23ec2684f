"""The engine's storage port (engine/store.py::RunStore).

- No ledger call of `run`, `resume` or `plan` blocks the event loop: a `Ledger` that notes,
  for every SQLite statement and lock call, whether an event loop runs in the calling
  thread, behind the real command line over loopback sockets.
- The port is all the engine needs of storage: an in-memory `RunStore` drives a whole run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.core.selectors import Selection
from orchestrator.core.settling import Calibration, CalibrationKind
from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.engine.store import RunStore
from orchestrator.errors import StateError
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus, TargetRow, Transition
from orchestrator.ledger.store import Ledger
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.server import running_simulator
from tests.simfleet import FAST, FAST_SOCKET_JOBS, scenario, sim_fleet
from tests.simfleet import PASSWORD_ENV as SIM_PASSWORD_ENV

CALLS: list[tuple[str, bool]] = []
"""(what, whether an event loop ran in the calling thread), per ledger call."""


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class RecordingLedger(Ledger):
    """Notes every statement and lock call (everything that may block) and its thread."""

    def _note(self, what: str) -> None:
        CALLS.append((what, _loop_running()))

    def _select(self, sql: str, params: Sequence[Any]) -> list[Any]:
        self._note("select")
        return super()._select(sql, params)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        self._note("transaction")
        with super()._transaction() as conn:
            yield conn

    def acquire(self, run_id: str) -> None:
        self._note("acquire")
        super().acquire(run_id)

    def release(self) -> None:
        self._note("release")
        super().release()


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, bool]]:
    monkeypatch.setattr("orchestrator.commands.common.Ledger", RecordingLedger)
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)
    CALLS.clear()
    return CALLS


def _args(inventory: Path, *extra: str) -> list[str]:
    return [str(inventory), "--state", "state.db", "--report-dir", "reports", *extra]


@pytest.mark.slow
def test_no_ledger_call_of_run_resume_or_plan_runs_on_the_event_loop(
    recording: list[tuple[str, bool]], tmp_path: Path
) -> None:
    """A canary that fails stops the run (the rest `aborted`); resume finishes it; a plan
    follows. Every lock, transaction and query while the loop ran was on a worker thread."""
    failing_canary = scenario({"kind": "keys_in_admin_svm", "cluster": "c001", "svm": "svm01"})
    spec = FleetSpec.generate(2, 3)
    with running_simulator(spec, failing_canary, seed=3) as sim:
        inventory = write_inventory(tmp_path / "inv.yaml", spec, sim.urls, ca_bundle=None)
        assert main(["run", *_args(inventory, "--yes")]) == 4
        with Ledger.open(Path("state.db")) as ledger:
            (run,) = ledger.list_runs()
        assert main(["resume", run.run_id, "--state", "state.db", "--report-dir", "r2"]) == 3
        assert main(["plan", *_args(inventory, "--report-dir", "r3")]) == 0
        rekeys = {k: len(v["rekeys"]) for k, v in sim.fleet.stats()["svms"].items()}
    assert sorted(rekeys.values()) == [0, 1, 1, 1, 1, 1]  # the canary failed, each other once
    assert {what for what, _ in recording} == {"acquire", "release", "transaction", "select"}
    on_loop = [what for what, on_loop in recording if on_loop]
    assert on_loop == [], f"blocking ledger calls on the event loop: {on_loop}"
    assert len(recording) > 20  # the recorder saw the runs' calls at all


def test_the_recorder_sees_a_call_made_on_the_event_loop(tmp_path: Path) -> None:
    """The probe above can fail: a ledger call made from a coroutine is noted on the loop."""
    CALLS.clear()

    async def blocking(ledger: Ledger) -> None:
        ledger.list_runs()

    with RecordingLedger.open(tmp_path / "state.db") as ledger:
        CALLS.clear()  # opening it (no loop) is allowed
        asyncio.run(blocking(ledger))
    assert CALLS == [("select", True)]


# -- an in-memory store drives the engine ----------------------------------------------------


class MemoryStore:
    """A `RunStore` in dicts: no SQLite, no file, no lock file."""

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self.rows: dict[tuple[str, TargetKey], TargetRow] = {}
        self.transitions: list[Transition] = []
        self.saved: dict[str, dict[CalibrationKind, Calibration]] = {}
        self.holder: str | None = None

    @property
    def path(self) -> Path:
        return Path("memory")

    async def new_run_id(self) -> str:
        return f"run-{len(self.runs) + 1}"

    async def acquire(self, run_id: str) -> None:
        if self.holder not in (None, run_id):
            raise StateError(f"held by {self.holder}")
        self.holder = run_id

    async def release(self) -> None:
        self.holder = None

    async def create_run(self, run: RunRecord) -> None:
        self.runs[run.run_id] = run

    async def add_targets(self, rows: list[TargetRow]) -> None:
        for row in rows:
            self.rows.setdefault((row.run_id, row.key), row)

    async def set_run_status(
        self, run_id: str, status: RunStatus, ended_at: float | None = None
    ) -> None:
        ended = ended_at if ended_at is not None or status is RunStatus.ACTIVE else time.time()
        self.runs[run_id] = replace(self.runs[run_id], status=status, ended_at=ended)

    async def get_run(self, run_id: str) -> RunRecord:
        return self.runs[run_id]

    async def targets(self, run_id: str) -> list[TargetRow]:
        return sorted((r for (rid, _), r in self.rows.items() if rid == run_id), key=_by_key)

    async def recorded_jobs(self, since: float, facts_key: str) -> dict[TargetKey, set[str]]:
        recent = {
            i
            for i, r in self.runs.items()
            if r.mode is not RunMode.PLAN and (r.ended_at is None or r.ended_at >= since)
        }
        found: dict[TargetKey, set[str]] = {}
        for (run_id, key), row in self.rows.items():
            jobs = {*row.facts.get(facts_key, []), *([row.job_uuid] if row.job_uuid else [])}
            if run_id in recent and jobs:
                found.setdefault(key, set()).update(jobs)
        return found

    async def calibrations(self) -> dict[str, dict[CalibrationKind, Calibration]]:
        return self.saved

    async def unfinished_in_flight(self) -> dict[str, list[TargetKey]]:
        return {}

    async def write(self, row: TargetRow, transition: Transition | None = None) -> None:
        self.rows[(row.run_id, row.key)] = row
        if transition is not None:
            self.transitions.append(transition)

    async def save_calibration(self, calibration: Calibration, run_id: str | None = None) -> None:
        self.saved.setdefault(calibration.cluster, {})[calibration.kind] = calibration

    async def aclose(self) -> None:
        return None


def _by_key(row: TargetRow) -> TargetKey:
    return row.key


@pytest.mark.anyio
async def test_an_in_memory_store_drives_a_whole_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """The port is the engine's only storage: rows, transitions, the run's status and the
    lock all go to it (no ledger file exists)."""
    monkeypatch.setenv(SIM_PASSWORD_ENV, "netapp-sim")
    sim = sim_fleet(2, 3, scenario=FAST_SOCKET_JOBS)
    store = MemoryStore()
    port: RunStore = store  # mypy: the in-memory store is a RunStore
    wiring = Wiring(port, transport_factory=sim.transport(), handle_signals=False)
    result = await execute_run(RunRequest(sim.inventory, Selection(), FAST), wiring)
    assert result is not None
    assert {row.outcome for row in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1} and len(sim.rekeys()) == 6
    (run,) = store.runs.values()
    assert (run.status, result.run) == (RunStatus.FINISHED, run)
    assert all(row.state is TargetState.DONE for row in store.rows.values())
    assert {t.key for t in store.transitions} == {row.key for row in result.rows}
    assert store.holder is None  # the lock was given back
