"""The ledger's commit order keeps the limits' promise at every crash point.

A read-back that holds no slot (its job was seen ending in success) queues its VERIFYING
row and gives its slots back at once, without waiting for the commit
(`TargetRecorder.move_queued`): the next target's intent, which its POST waits for, is
committed no earlier than that row. So in the ledger, replayed in commit order, a
cluster never has more targets in flight (intent, submitted, uncertain) than its limit:
what `resume` finds after a crash at any moment never shows more jobs possibly running
than the limits allowed, and no target whose job ended is left looking unsent while
another target's POST went out in its place.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.targets import TargetState
from orchestrator.ledger.records import Transition
from orchestrator.ledger.store import Ledger
from tests.simfleet import Runner, sim_fleet

pytestmark = pytest.mark.anyio

_HOLDING = frozenset({TargetState.INTENT, TargetState.SUBMITTED, TargetState.UNCERTAIN})


def _peaks_in_commit_order(steps: list[Transition]) -> tuple[Counter[str], int]:
    """Replay the transitions in commit order: the most targets in flight at once, per
    cluster and fleet-wide."""
    states: dict[tuple[str, str], TargetState] = {}
    holding: Counter[str] = Counter()
    peaks: Counter[str] = Counter()
    fleet = fleet_peak = 0
    for step in steps:
        target = (step.key.cluster, step.key.svm)
        before = states.get(target)
        states[target] = step.state
        change = (step.state in _HOLDING) - (before in _HOLDING)
        holding[step.key.cluster] += change
        fleet += change
        peaks[step.key.cluster] = max(peaks[step.key.cluster], holding[step.key.cluster])
        fleet_peak = max(fleet_peak, fleet)
    return peaks, fleet_peak


async def test_the_ledger_never_shows_more_targets_in_flight_than_the_limits(
    run_sim: Runner, tmp_path: Path
) -> None:
    sim = sim_fleet(4, 12)
    result = await run_sim(sim, per_cluster=2, concurrency=6)
    assert result.exit_code is ExitCode.OK
    assert set(sim.rekeys().values()) == {1}
    with Ledger.open(tmp_path / "state.db") as ledger:
        steps = ledger.transitions(result.run.run_id)
    per_target = Counter(
        (s.key.svm, s.key.cluster) for s in steps if s.state is TargetState.VERIFYING
    )
    assert len(per_target) == 48  # every target went through a read-back without slots
    peaks, fleet_peak = _peaks_in_commit_order(steps)
    assert set(peaks.values()) == {2}  # each cluster's limit reached, never passed
    assert fleet_peak <= 6
