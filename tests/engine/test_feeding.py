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
from orchestrator.engine.scheduling import start_fed
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.client import OntapClient

pytestmark = pytest.mark.anyio


def _cluster(limit: int) -> ClusterContext:
    spec = ClusterSpec(
        name="c001",
        base_url="http://127.0.0.1:1",
        auth=BasicAuth("admin", password_env="UNUSED"),
        tls=TlsSettings(),
        key_id="k",
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(500)))
    return ClusterContext(
        spec=spec,
        client=OntapClient("c001", http),
        limiter=anyio.CapacityLimiter(limit),
        breaker=CircuitBreaker(threshold=5, cooldown_s=30.0),
        budget=RetryBudget(100),
    )


async def test_a_cluster_has_at_most_two_rounds_of_targets_wanting_its_slots() -> None:
    """With a limit of 2, a third and fourth target queue; the fifth starts only once one
    of the first gives its slot back; every target starts in its order."""
    cluster = _cluster(2)
    rows = [TargetRow("run", TargetKey("c001", f"svm{i:02}")) for i in range(10)]
    started: list[str] = []
    release = anyio.Event()

    async def target(row: TargetRow, began: Callable[[], None]) -> None:
        began()
        started.append(row.key.svm)
        async with cluster.limiter:  # holds or queues for the cluster's slot, as a target
            await release.wait()
        cluster.target_idle()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:

            def start(row: TargetRow, began: Callable[[], None]) -> None:
                group.start_soon(target, row, began)

            start_fed(group, rows, {"c001": cluster}, start)
            await anyio.wait_all_tasks_blocked()
            assert started == ["svm00", "svm01", "svm02", "svm03"]
            release.set()
    assert started == [row.key.svm for row in rows]
