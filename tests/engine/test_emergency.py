"""The emergency profile on a 500-target fleet: only the selection, the reason recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core.inventory import RunDefaults
from orchestrator.core.options import resolve_options
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import RunMode
from orchestrator.ledger.store import Ledger
from orchestrator.observe.reports import build_report
from tests.simfleet import scenario, sim_fleet

pytestmark = pytest.mark.anyio

NAMES = [f"fin{i:02d}" for i in range(10)] + [f"hr{i:02d}" for i in range(40)]
REASON = "INC-4711: KMS key material exposure"


async def test_emergency_on_500_targets_touches_only_fin_svms(tmp_path: Path) -> None:
    sim = sim_fleet(
        10, 50, svm_names=NAMES, scenario=scenario(job_duration={"min_s": 0.005, "max_s": 0.01})
    )
    options = resolve_options(
        {"emergency": True, "reason": REASON, "backoff_scale": 0.001}, RunDefaults()
    )
    assert (options.waves, options.per_cluster) == ("100%", 4)
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = Wiring(
            AsyncLedger(ledger), transport_factory=sim.transport(), handle_signals=False
        )
        request = RunRequest(sim.inventory, Selection(svms=("fin*",)), options, RunMode.EMERGENCY)
        result = await execute_run(request, wiring)
        assert result is not None
        run = ledger.get_run(result.run.run_id)
        report = build_report(run, ledger.targets(run.run_id), ledger.transitions(run.run_id))
    touched = {name for name, count in sim.rekeys().items() if count}
    assert len(sim.rekeys()) == 500
    assert touched == {f"c{c:03d}/fin{i:02d}" for c in range(1, 11) for i in range(10)}
    assert {row.outcome for row in result.rows} == {"rekeyed"}
    assert (run.mode, run.reason) == (RunMode.EMERGENCY, REASON)
    assert report["run"]["reason"] == REASON
