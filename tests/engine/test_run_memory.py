"""What a rotation keeps in memory: a pending row until its target starts, then only the
target's task; once finished, its outcome (and its final row only with `keep_rows`)."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import NullObserver, RunRequest, RunResult, Wiring, execute_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import TargetRow
from orchestrator.ledger.store import Ledger
from tests.simfleet import FAST, SimFleet, scenario, sim_fleet

pytestmark = pytest.mark.anyio

CLUSTERS, SVMS, PER_CLUSTER = 3, 12, 2


class _RowCounter(NullObserver):
    """Counts the TargetRow objects alive each time a target finishes (in the rotation)."""

    def __init__(self) -> None:
        self.alive: list[int] = []

    def start(self, total: int, clusters: int, wave_sizes: Sequence[int]) -> None:
        gc.collect()  # discovery's garbage: what is left is what the rotation holds

    def target_finished(self, outcome: str) -> None:
        self.alive.append(sum(1 for o in gc.get_objects() if isinstance(o, TargetRow)))


async def _run(tmp_path: Path, *, keep_rows: bool) -> tuple[RunResult, _RowCounter, Ledger]:
    sim: SimFleet = sim_fleet(
        CLUSTERS, SVMS, scenario=scenario(job_duration={"min_s": 0.01, "max_s": 0.02})
    )
    counter = _RowCounter()
    ledger = Ledger.open(tmp_path / "state.db")
    wiring = Wiring(
        AsyncLedger(ledger),
        transport_factory=sim.transport(),
        observer=counter,
        handle_signals=False,
        keep_rows=keep_rows,
    )
    request = RunRequest(sim.inventory, Selection(), replace(FAST, per_cluster=PER_CLUSTER))
    result = await execute_run(request, wiring)
    assert result is not None
    return result, counter, ledger


async def test_without_keep_rows_a_finished_target_leaves_no_row_in_memory(
    tmp_path: Path,
) -> None:
    """When the last target finishes, the rows alive are at most those of the targets
    still running (each task's own copies); every pending row went when its target
    started, every finished one when it finished. The run's outcome is the same."""
    result, counter, ledger = await _run(tmp_path, keep_rows=False)
    with ledger:
        targets = CLUSTERS * SVMS
        assert result.exit_code is ExitCode.OK and result.rows == []
        assert len(counter.alive) == targets
        running = CLUSTERS * PER_CLUSTER  # at most, and a few rows each (the task's, the
        assert counter.alive[-1] <= 3 * running  # recorder's, one being written)
        stored = ledger.targets(result.run.run_id)
        assert len(stored) == targets and {row.outcome for row in stored} == {"rekeyed"}


async def test_with_keep_rows_every_final_row_is_returned(tmp_path: Path) -> None:
    """The tests' and benchmarks' wiring: every final row, equal to the ledger's (and so
    held to the end: the count above is not a rotation that never held rows)."""
    result, counter, ledger = await _run(tmp_path, keep_rows=True)
    with ledger:
        assert result.exit_code is ExitCode.OK
        assert result.rows == ledger.targets(result.run.run_id)
        assert counter.alive[-1] >= CLUSTERS * SVMS


async def test_a_discovered_clusters_answers_go_once_its_rows_are_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Discovery one cluster at a time (`--concurrency 1`): when a cluster's discovery
    starts, no earlier cluster's `Discovery` (configurations, key stores, health) is still
    alive: only the rows built from it are."""
    import weakref

    from orchestrator.engine import discovering

    earlier: list[weakref.ref[object]] = []
    alive_at_start: list[int] = []
    discover = discovering.discover

    async def watched(*args: object, **kwargs: object) -> object:
        gc.collect()
        alive_at_start.append(sum(1 for ref in earlier if ref() is not None))
        found = await discover(*args, **kwargs)  # type: ignore[arg-type]
        earlier.append(weakref.ref(found))
        return found

    monkeypatch.setattr(discovering, "discover", watched)
    sim = sim_fleet(CLUSTERS, 4, scenario=scenario(job_duration={"min_s": 0.01, "max_s": 0.02}))
    with Ledger.open(tmp_path / "state.db") as ledger:
        transports = sim.transport()
        wiring = Wiring(AsyncLedger(ledger), transport_factory=transports, handle_signals=False)
        request = RunRequest(sim.inventory, Selection(), replace(FAST, concurrency=1))
        result = await execute_run(request, wiring)
    assert result is not None and result.exit_code is ExitCode.OK
    assert len(result.rows) == CLUSTERS * 4
    assert alive_at_start == [0] * CLUSTERS
