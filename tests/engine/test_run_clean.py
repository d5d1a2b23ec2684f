"""Whole runs in-process against the simulator (httpx transport, no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.ledger.store import Ledger
from tests.simfleet import PASSWORD_ENV, sim_fleet

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")


async def test_clean_fleet_every_target_rekeyed_once(tmp_path: Path) -> None:
    sim = sim_fleet(3, 4)
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = Wiring(ledger, transport_factory=sim.transport(), handle_signals=False)
        request = RunRequest(sim.inventory, Selection(), RunOptions(per_cluster=2))
        result = await execute_run(request, wiring)
    assert result is not None
    assert result.exit_code is ExitCode.OK
    assert {row.outcome for row in result.rows} == {"rekeyed"}
    assert len(result.rows) == 12
    assert set(sim.rekeys().values()) == {1}
