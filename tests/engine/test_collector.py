"""The garbage collector's tuning while a cluster pool is open (engine/collector.py)."""

from __future__ import annotations

import gc

import pytest

from orchestrator.core.options import RunOptions
from orchestrator.engine import collector
from orchestrator.engine.pool import ClusterPool


def test_tuning_collects_less_often_and_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    collector.tune()
    try:
        assert gc.get_threshold()[0] >= collector.YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0  # what was alive before is out of every collection
    finally:
        collector.restore()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_nested_tuning_is_undone_by_the_outermost_restore_only() -> None:
    before = gc.get_threshold()
    collector.tune()
    collector.tune()
    collector.restore()
    assert gc.get_threshold()[0] >= collector.YOUNG_THRESHOLD  # the outer pool is still open
    collector.restore()
    assert gc.get_threshold() == before
    collector.restore()  # one too many: harmless
    assert gc.get_threshold() == before


@pytest.mark.anyio
async def test_a_cluster_pool_tunes_the_collector_while_it_is_open() -> None:
    before = gc.get_threshold()
    async with ClusterPool([], RunOptions()):
        assert gc.get_threshold()[0] >= collector.YOUNG_THRESHOLD
    assert gc.get_threshold() == before
