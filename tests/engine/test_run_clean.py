"""Whole runs in-process against the simulator (httpx transport, no sockets)."""

from __future__ import annotations

import pytest

from orchestrator.core.exitcodes import ExitCode
from tests.simfleet import Runner, scenario, sim_fleet

pytestmark = pytest.mark.anyio


async def test_clean_fleet_20x10_every_target_rekeyed_once_within_the_limits(
    run_sim: Runner,
) -> None:
    sim = sim_fleet(20, 10, scenario=scenario(job_duration={"min_s": 0.02, "max_s": 0.05}))
    result = await run_sim(sim, per_cluster=2, concurrency=16)
    assert result.exit_code is ExitCode.OK
    assert len(result.rows) == 200
    assert {row.outcome for row in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}
    stats = sim.fleet.stats()
    assert max(c["peak_concurrent_rekeys"] for c in stats["clusters"].values()) <= 2
    assert 2 < stats["fleet"]["peak_concurrent_rekeys"] <= 16
