"""A target's slots: the cluster's and the run's limiter, taken together (engine/procedure.py)."""

from __future__ import annotations

import anyio
import httpx
import pytest

from orchestrator.core.backoff import RetryBudget
from orchestrator.core.inventory import BasicAuth, ClusterSpec, TlsSettings
from orchestrator.core.options import RunOptions
from orchestrator.engine.breaker import CircuitBreaker
from orchestrator.engine.context import ClusterContext, RunContext
from orchestrator.engine.procedure import TargetSlots
from orchestrator.ontap.client import OntapClient

pytestmark = pytest.mark.anyio


class _NoLedger:
    async def write(self, *_: object) -> None:
        raise AssertionError("no write expected")

    async def save_calibration(self, *_: object) -> None:
        raise AssertionError("no write expected")


def _contexts(cluster_limit: int, run_limit: int) -> tuple[RunContext, ClusterContext]:
    spec = ClusterSpec(
        name="c001",
        base_url="http://127.0.0.1:1",
        auth=BasicAuth("admin", password_env="UNUSED"),
        tls=TlsSettings(),
        key_id="k",
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(500)))
    cluster = ClusterContext(
        spec=spec,
        client=OntapClient("c001", http),
        limiter=anyio.CapacityLimiter(cluster_limit),
        breaker=CircuitBreaker(threshold=5, cooldown_s=30.0),
        budget=RetryBudget(100),
    )
    run = RunContext(
        run_id="run",
        options=RunOptions(),
        ledger=_NoLedger(),
        limiter=anyio.CapacityLimiter(run_limit),
        budget=RetryBudget(100),
        overrides={},
    )
    return run, cluster


async def test_a_cancelled_target_takes_no_slot_even_when_both_are_free() -> None:
    """Free slots are taken without a trip through the event loop; a target cancelled
    before it asks still takes none (it must not go on to commit an intent)."""
    run, cluster = _contexts(2, 2)
    slots = TargetSlots(run, cluster)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await slots.take()
    assert scope.cancelled_caught
    assert not slots.held
    assert cluster.limiter.borrowed_tokens == run.limiter.borrowed_tokens == 0
