"""Fixtures for whole runs against the in-process simulator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import RunRequest, RunResult, Wiring, execute_run
from orchestrator.ledger.store import Ledger
from orchestrator.simulator.scenario import Scenario
from tests.simfleet import PASSWORD_ENV, SimFleet

FAST = RunOptions(backoff_scale=0.001, retry_after_cap_s=0.01, waves="100%", request_timeout_s=0.5)
"""Real backoff, scaled down so a test's retries take milliseconds."""

FAST_JOBS = {"options": {"job_duration": {"min_s": 0.001, "max_s": 0.005}}}


def scenario(*faults: dict[str, Any], **options: Any) -> Scenario:
    """A scenario with fast jobs and these faults."""
    merged = {**FAST_JOBS["options"], **options}
    return Scenario.model_validate({"options": merged, "faults": list(faults)})


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")


Runner = Callable[..., Awaitable[RunResult]]


@pytest.fixture
def run_sim(tmp_path: Path) -> Runner:
    """Run the whole inventory of a SimFleet; returns the RunResult."""

    async def run(sim: SimFleet, selection: Selection | None = None, **options: Any) -> RunResult:
        with Ledger.open(tmp_path / "state.db") as ledger:
            wiring = Wiring(ledger, transport_factory=sim.transport(), handle_signals=False)
            request = RunRequest(sim.inventory, selection or Selection(), replace(FAST, **options))
            result = await execute_run(request, wiring)
        assert result is not None
        return result

    return run
