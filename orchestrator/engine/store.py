"""The engine's port to storage: what a run and a plan need of the ledger, all awaited.

The engine owns this interface and the ledger implements it (`ledger.async_ledger.
AsyncLedger`, structurally: the ledger imports nothing of the engine). Every call made
while the event loop runs goes through it, and an implementation must not block the loop
(AsyncLedger does the blocking SQLite and `flock` work on its own worker thread). The
engine imports neither `ledger.store` nor `ledger.async_ledger` (tests/test_architecture.py):
the command line opens the ledger and hands the engine this port.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from orchestrator.core.settling import Calibration, CalibrationKind
from orchestrator.core.targets import TargetKey
from orchestrator.engine.recorder import LedgerWriter
from orchestrator.ledger.records import RunRecord, RunStatus, TargetRow


class RunStore(LedgerWriter, Protocol):
    """Runs, their targets and what earlier runs learnt, for the engine (awaited)."""

    @property
    def path(self) -> Path:
        """Where the ledger lives: error messages name it (`resume ... --state PATH`)."""
        ...

    async def new_run_id(self) -> str:
        """A fresh run id no run of the ledger has."""
        ...

    async def acquire(self, run_id: str) -> None:
        """Hold the ledger's run lock for `run_id`; StateError naming the holder if taken."""
        ...

    async def release(self) -> None:
        """Give the run lock back (a no-op when not held)."""
        ...

    async def create_run(self, run: RunRecord) -> None:
        """Record a new run."""
        ...

    async def add_targets(self, rows: list[TargetRow]) -> None:
        """Record targets in one transaction; a target already recorded keeps its row."""
        ...

    async def set_run_status(
        self, run_id: str, status: RunStatus, ended_at: float | None = None
    ) -> None:
        """Set a run's status (a non-active one without `ended_at` ends it now)."""
        ...

    async def get_run(self, run_id: str) -> RunRecord:
        """The run as stored (StateError when there is none)."""
        ...

    async def targets(self, run_id: str) -> list[TargetRow]:
        """Every target row of a run, ordered by cluster then SVM."""
        ...

    async def recorded_jobs(self, since: float, facts_key: str) -> dict[TargetKey, set[str]]:
        """By target, the job uuids recorded by runs (not plans) that ended at or after
        `since` or did not end: each row's job and its facts' `facts_key` list."""
        ...

    async def calibrations(self) -> dict[str, dict[CalibrationKind, Calibration]]:
        """Every cluster's recorded job calibrations (core.settling)."""
        ...

    async def unfinished_in_flight(self) -> dict[str, list[TargetKey]]:
        """By run id, the in-flight targets of runs that did not finish."""
        ...

    async def aclose(self) -> None:
        """Wait until every write handed to the store is committed (the store stays open)."""
        ...
