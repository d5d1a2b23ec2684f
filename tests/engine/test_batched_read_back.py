"""The batched read-back in a real run (issue 16): on a clean fleet the POST answers with
the finished job, every target's read-back shares one filtered collection GET per
cluster (and, from 9.16.1 only, one key-store GET), so requests per target approach one;
the read-back holds no slot, and the limits still bound running jobs."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from orchestrator.core.options import RunOptions
from orchestrator.core.targets import TargetState
from orchestrator.engine.pool import read_back_wait
from orchestrator.engine.readback import DEFAULT_BUSY_WAIT_S
from tests.simfleet import Runner, scenario, sim_fleet

pytestmark = pytest.mark.anyio

CLUSTERS, SVMS, PER_CLUSTER = 2, 12, 3
JOBS = {"job_duration": {"min_s": 0.02, "max_s": 0.05}}


def _requests(stats: dict[str, Any], cluster: str) -> Counter[tuple[str, str]]:
    """(method, path) -> requests, from the simulator's ground truth."""
    counts: Counter[tuple[str, str]] = Counter()
    for entry in stats["clusters"][cluster]["requests"]:
        counts[(entry["method"], entry["path"])] += entry["count"]
    return counts


@pytest.mark.parametrize(("version", "key_store_reads"), [("9.14.1", 0), ("9.16.1", 1)])
async def test_a_clean_fleet_is_read_back_in_one_batch_per_cluster(
    run_sim: Runner, version: str, key_store_reads: int
) -> None:
    sim = sim_fleet(CLUSTERS, SVMS, scenario=scenario(**JOBS), versions=(version,))
    # No failure budget (as an emergency without --max-fail-percent): read-backs wait for
    # their busy cluster and leave in one batch.
    result = await run_sim(
        sim, per_cluster=PER_CLUSTER, return_timeout=30, concurrency=4, max_fail_percent=None
    )
    assert {row.outcome for row in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}  # every SVM once, none twice
    stats = sim.fleet.stats()
    for cluster in ("c001", "c002"):
        requests = _requests(stats, cluster)
        assert stats["clusters"][cluster]["peak_concurrent_rekeys"] <= PER_CLUSTER
        posts = sum(n for (method, _), n in requests.items() if method == "POST")
        gets = {path: n for (method, path), n in requests.items() if method == "GET"}
        assert posts == SVMS
        # discovery: the cluster, every key manager collection the version serves (no
        # `providers:` in the inventory), the key stores (with the fields the version
        # serves: none refused); then one batch: the configurations, and from 9.16.1 their
        # key stores
        assert gets.get("/api/security/aws-kms") == 2, gets
        assert gets.get("/api/security/azure-key-vaults") == 1, gets
        assert gets.get("/api/security/gcp-kms") == 1, gets
        assert gets.get("/api/security/key-stores") == 1 + key_store_reads, gets
        assert set(gets) == {
            "/api/cluster",
            "/api/security/aws-kms",
            "/api/security/azure-key-vaults",
            "/api/security/gcp-kms",
            "/api/security/key-stores",
        }
        total = sum(requests.values())
        assert total / SVMS <= 1 + 7 / SVMS  # discovery and one batch per cluster, no more


async def test_the_fleet_never_runs_more_rekeys_than_the_limits(run_sim: Runner) -> None:
    """Read-backs wait without a slot: the per-cluster and the run limits still bound
    the running jobs (the ground truth's peaks), and every target ends rekeyed once."""
    sim = sim_fleet(3, 10, scenario=scenario(job_duration={"min_s": 0.05, "max_s": 0.1}))
    result = await run_sim(sim, per_cluster=3, concurrency=4, return_timeout=30)
    assert all(row.state is TargetState.DONE for row in result.rows)
    assert {row.outcome for row in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}
    clusters = sim.fleet.stats()["clusters"]
    assert max(c["peak_concurrent_rekeys"] for c in clusters.values()) <= 3
    assert sum(c["peak_concurrent_rekeys"] for c in clusters.values()) <= 4 * len(clusters)


def test_a_stop_that_judges_outcomes_gets_every_read_back_at_once() -> None:
    """Fail-fast and a failure budget must see each outcome now, not when the cluster is
    quiet; only a run without either lets read-backs wait for one another."""
    assert read_back_wait(RunOptions(fail_fast=True, max_fail_percent=None)) == 0.0
    assert read_back_wait(RunOptions(max_fail_percent=10)) == 0.0
    assert read_back_wait(RunOptions(max_fail_percent=None)) == DEFAULT_BUSY_WAIT_S
