"""A cluster's targets start only as fast as it takes them up (engine/scheduling.py)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest

from orchestrator.core.backoff import RetryBudget
from orchestrator.core.inventory import BasicAuth, ClusterSpec, TlsSettings
from orchestrator.core.targets import TargetKey
from orchestrator.engine.breaker import CircuitBreaker
from orchestrator.engine.context import ClusterContext
from orchestrator.engine.scheduling import cluster_lanes, start_fed
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.client import OntapClient

pytestmark = pytest.mark.anyio


def _cluster(limit: int, name: str = "c001") -> ClusterContext:
    spec = ClusterSpec(
        name=name,
        base_url="http://127.0.0.1:1",
        auth=BasicAuth("admin", password_env="UNUSED"),
        tls=TlsSettings(),
        key_id="k",
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(500)))
    return ClusterContext(
        spec=spec,
        client=OntapClient(name, http),
        limiter=anyio.CapacityLimiter(limit),
        breaker=CircuitBreaker(threshold=5, cooldown_s=30.0),
        budget=RetryBudget(100),
    )


async def test_a_cluster_has_at_most_two_rounds_of_targets_wanting_its_slots() -> None:
    """With a limit of 2, a third and fourth target queue; the fifth starts only once one
    of the first gives its slot back; every target starts in its order."""
    rows = [TargetRow("run", TargetKey("c001", f"svm{i:02}")) for i in range(10)]
    while_held, started = await _feed_held_targets(rows, {"c001": _cluster(2)})
    assert [key.svm for key in while_held] == ["svm00", "svm01", "svm02", "svm03"]
    assert started == [row.key for row in rows]


async def _feed_held_targets(
    rows: list[TargetRow], clusters: dict[str, ClusterContext], concurrency: int | None = None
) -> tuple[list[TargetKey], list[TargetKey]]:
    """Feed `rows` to targets that hold (or queue for) their cluster's slot until
    released: (the targets started while every one of them holds, all started)."""
    started: list[TargetKey] = []
    release = anyio.Event()

    async def target(row: TargetRow, began: Callable[[], None]) -> None:
        began()
        started.append(row.key)
        cluster = clusters[row.key.cluster]
        async with cluster.limiter:  # holds or queues for the cluster's slot, as a target
            await release.wait()
        cluster.target_idle()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:

            def start(row: TargetRow, began: Callable[[], None]) -> None:
                group.start_soon(target, row, began)

            start_fed(group, rows, clusters, start, concurrency=concurrency)
            await anyio.wait_all_tasks_blocked()
            while_held = list(started)
            release.set()
    return while_held, started


def test_lanes_only_when_the_clusters_limits_exceed_the_global_limit() -> None:
    assert cluster_lanes([4] * 250, 1000) is None  # 250 x 4 fit: every cluster at once
    assert cluster_lanes([4] * 2500, 1000) == 313  # 250 fill it, and a quarter more
    assert cluster_lanes([4] * 2500, None) is None  # an emergency: priority across clusters
    assert cluster_lanes([2, 6], 1) == 1
    assert cluster_lanes([], 10) is None


async def test_only_as_many_clusters_are_fed_as_fill_the_global_limit() -> None:
    """6 clusters of limit 2 under a global limit of 4: 3 lanes. While the targets hold,
    only the first 3 clusters (in the run's order) have started any; once they finish,
    every target of every cluster starts, each cluster's in its order."""
    names = [f"c{i:03}" for i in range(1, 7)]
    clusters = {name: _cluster(2, name) for name in names}
    # 6 targets a cluster: more than its 2 rounds (4), so its feeder still holds its lane
    rows = [TargetRow("run", TargetKey(name, f"svm{i}")) for i in range(6) for name in names]
    while_held, started = await _feed_held_targets(rows, clusters, concurrency=4)
    assert {key.cluster for key in while_held} == {"c001", "c002", "c003"}
    assert sorted(started) == sorted(row.key for row in rows)
    for name in names:
        assert [k.svm for k in started if k.cluster == name] == [f"svm{i}" for i in range(6)]
