"""Fixtures for whole runs against the in-process simulator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.selectors import Selection
from orchestrator.engine.pool import TransportFactory
from orchestrator.engine.runner import RunRequest, RunResult, Wiring, execute_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.store import Ledger
from tests.simfleet import FAST, PASSWORD_ENV, Runner, SimFleet


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")


@pytest.fixture
def run_sim(tmp_path: Path) -> Runner:
    """Run the whole inventory of a SimFleet (through `factory`'s transports when given)."""

    async def run(
        sim: SimFleet,
        selection: Selection | None = None,
        *,
        factory: TransportFactory | None = None,
        **options: Any,
    ) -> RunResult:
        with Ledger.open(tmp_path / "state.db") as ledger:
            transports = factory or sim.transport()
            wiring = Wiring(AsyncLedger(ledger), transport_factory=transports, handle_signals=False)
            request = RunRequest(sim.inventory, selection or Selection(), replace(FAST, **options))
            result = await execute_run(request, wiring)
        assert result is not None
        return result

    return run
