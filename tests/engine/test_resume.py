"""Cancelled mid-flight, then resumed from the ledger: every target once, none twice."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import TargetState
from orchestrator.engine.runner import RunRequest, Wiring, execute_run, resume_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import RunStatus
from orchestrator.ledger.store import Ledger
from tests.ledger_factories import integrity_problems
from tests.simfleet import FAST, scenario, sim_fleet

pytestmark = pytest.mark.anyio


async def _cancelled_run(ledger: Ledger, request: RunRequest, wiring: Wiring, after: float) -> str:
    with anyio.move_on_after(after):
        await execute_run(request, wiring)
    (run,) = ledger.list_runs()
    return run.run_id


@pytest.mark.parametrize("cancel_after", [0.15, 0.3, 0.45])
async def test_cancel_then_resume_rekeys_each_target_exactly_once(
    tmp_path: Path, cancel_after: float
) -> None:
    sim = sim_fleet(2, 6, scenario=scenario(job_duration={"min_s": 0.05, "max_s": 0.1}))
    options = RunOptions(**{**FAST.to_json(), "per_cluster": 2, "return_timeout": 0})
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = Wiring(
            AsyncLedger(ledger), transport_factory=sim.transport(), handle_signals=False
        )
        request = RunRequest(sim.inventory, Selection(), options)
        run_id = await _cancelled_run(ledger, request, wiring, cancel_after)
        interrupted = ledger.get_run(run_id)
        assert interrupted.status is RunStatus.INTERRUPTED
        result = await resume_run(interrupted, request, wiring)
        assert {row.outcome for row in result.rows} == {"rekeyed"}
        assert all(row.state is TargetState.DONE for row in ledger.targets(run_id))
        assert integrity_problems(ledger.path) == []
    assert set(sim.rekeys().values()) == {1}


async def test_resume_settles_an_intent_left_by_a_crash(tmp_path: Path) -> None:
    """A row left at INTENT whose POST never reached ONTAP is proven unsent, then sent once."""
    sim = sim_fleet(1, 2, scenario=scenario())
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = Wiring(
            AsyncLedger(ledger), transport_factory=sim.transport(), handle_signals=False
        )
        request = RunRequest(sim.inventory, Selection(), FAST)
        result = await execute_run(request, wiring)
        assert result is not None
        import time
        from dataclasses import replace

        crashed = [
            replace(r, state=TargetState.INTENT, outcome=None, intent_at=time.time())
            for r in ledger.targets(result.run.run_id)
        ]
        ledger.write([(row, None) for row in crashed])
        ledger.set_run_status(result.run.run_id, RunStatus.ACTIVE)
        resumed = await resume_run(ledger.get_run(result.run.run_id), request, wiring)
    assert {row.outcome for row in resumed.rows} == {"rekeyed"}
    # the job of the first run was found since the intent: settled, not re-sent
    assert set(sim.rekeys().values()) == {1}


async def test_targets_aborted_at_the_deadline_are_resumed(tmp_path: Path) -> None:
    """Each resume gets a fresh deadline window, so aborted targets make progress."""
    sim = sim_fleet(1, 3, scenario=scenario(job_duration={"min_s": 0.1, "max_s": 0.1}))
    options = RunOptions(**{**FAST.to_json(), "deadline_s": 0.05, "per_cluster": 1})
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = Wiring(
            AsyncLedger(ledger), transport_factory=sim.transport(), handle_signals=False
        )
        request = RunRequest(sim.inventory, Selection(), options)
        result = await execute_run(request, wiring)
        assert result is not None
        assert "aborted" in {row.outcome for row in result.rows}
        for _ in range(5):
            if {row.outcome for row in result.rows} == {"rekeyed"}:
                break
            result = await resume_run(ledger.get_run(result.run.run_id), request, wiring)
    assert {row.outcome for row in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}


async def test_intents_a_crash_left_unprovable_do_not_spend_the_resumes_budget(
    tmp_path: Path,
) -> None:
    """A kill in a cluster's first round, before any of its jobs calibrated the search:
    its intents cannot be settled (`unverified: cannot_settle`, never re-sent). They are
    the crash's, not the fleet's: the resume's failure budget (10 % of 5) does not count
    them, so the other 7 targets are rekeyed instead of aborted."""
    import time
    from dataclasses import replace

    from orchestrator.engine.planner import RunPreview
    from orchestrator.engine.run_record import new_run_record
    from orchestrator.engine.runner import selected_specs
    from orchestrator.ledger.records import RunMode

    sim = sim_fleet(1, 10, scenario=scenario())
    options = RunOptions(**{**FAST.to_json(), "max_fail_percent": 10.0, "per_cluster": 2})
    request = RunRequest(sim.inventory, Selection(), options)
    planned: list[RunPreview] = []
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = Wiring(
            AsyncLedger(ledger), transport_factory=sim.transport(), handle_signals=False
        )
        wiring.confirm = lambda shown: planned.append(shown) is not None  # declined: no run
        assert await execute_run(request, wiring) is None
        # what the killed process left: the run, three intents long past, seven pending
        record = new_run_record(
            "crashed", RunMode.RUN, sim.inventory, options, Selection(), selected_specs(request)
        )
        rows = [replace(row, run_id="crashed") for row in planned[0].rows]
        long_ago = time.time() - 60  # past the settle window: "too early" no more
        crashed = [replace(r, state=TargetState.INTENT, intent_at=long_ago) for r in rows[:3]]
        ledger.create_run(record)
        ledger.add_targets(crashed + rows[3:])
        wiring.confirm = None
        resumed = await resume_run(ledger.get_run("crashed"), request, wiring)
        final = {str(row.key): row for row in ledger.targets("crashed")}
    assert resumed.stop_reason is None
    assert resumed.run.status is RunStatus.FINISHED
    unprovable = {str(row.key) for row in crashed}
    assert {final[key].reason for key in unprovable} == {"cannot_settle"}
    assert {row.outcome for key, row in final.items() if key not in unprovable} == {"rekeyed"}
    rekeys = sim.rekeys()
    assert {rekeys[key] for key in unprovable} == {0}  # never re-sent
    assert sum(rekeys.values()) == 7
