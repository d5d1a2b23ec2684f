"""One ONTAP client, limiter, breaker and retry budget per cluster of a run."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType

import anyio
import httpx
from anyio.abc import TaskGroup

from orchestrator.core.backoff import RetryBudget
from orchestrator.core.inventory import ClusterSpec
from orchestrator.core.options import RunOptions, cluster_limit
from orchestrator.engine import collector
from orchestrator.engine.breaker import CircuitBreaker
from orchestrator.engine.context import ClusterContext
from orchestrator.engine.readback import DEFAULT_BUSY_WAIT_S, DEFAULT_IN_FLIGHT_WAIT_S
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.connect import build_http_client

TransportFactory = Callable[[ClusterSpec], httpx.AsyncBaseTransport]
"""Tests inject a transport per cluster (the in-process simulator, a MockTransport)."""

SPARE_CONNECTIONS = 2  # beyond the per-cluster limit: settle and verify GETs while POSTs wait


class ClusterPool:
    """The clusters of one run; an async context manager that runs every cluster's
    read-back batcher and closes every client. While it is open the garbage collector
    runs less often (`engine/collector.py`: the fleet's many objects)."""

    def __init__(
        self,
        specs: Iterable[ClusterSpec],
        options: RunOptions,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.clusters: dict[str, ClusterContext] = {
            spec.name: _context(spec, options, transport_factory) for spec in specs
        }
        self._batchers: TaskGroup | None = None

    def __getitem__(self, name: str) -> ClusterContext:
        return self.clusters[name]

    async def __aenter__(self) -> ClusterPool:
        collector.tune()
        try:
            # One task group for every batcher's flusher: one cancel scope, not one per
            # cluster nested inside each other (anyio walks that chain at every checkpoint).
            group = anyio.create_task_group()
            await group.__aenter__()
        except BaseException:
            collector.restore()
            raise
        for context in self.clusters.values():
            context.batcher.start_in(group)
        self._batchers = group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            for context in self.clusters.values():
                context.batcher.close()  # a read-back still waiting ends with an error
            # outside the shield: the batchers' task group was entered before it; the
            # body's exception is not the group's (it propagates as it is, not grouped)
            assert self._batchers is not None
            await self._batchers.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                for context in self.clusters.values():
                    await context.client.aclose()
            collector.restore()


def _context(
    spec: ClusterSpec, options: RunOptions, transport_factory: TransportFactory | None
) -> ClusterContext:
    limit = cluster_limit(options, spec.per_cluster)
    http = build_http_client(
        spec,
        timeout=httpx.Timeout(options.request_timeout_s, connect=options.connect_timeout_s),
        limits=httpx.Limits(
            max_connections=limit + SPARE_CONNECTIONS,
            max_keepalive_connections=limit + SPARE_CONNECTIONS,
        ),
        transport=transport_factory(spec) if transport_factory else None,
    )
    return ClusterContext(
        spec=spec,
        client=OntapClient(spec.name, http),
        limiter=anyio.CapacityLimiter(limit),
        breaker=CircuitBreaker(
            threshold=options.breaker_threshold, cooldown_s=options.breaker_cooldown_s
        ),
        budget=RetryBudget(options.cluster_retry_budget),
        read_back_wait_s=read_back_wait(options),
        in_flight_wait_s=in_flight_wait(options),
    )


def read_back_wait(options: RunOptions) -> float:
    """How long a read-back waits for the rest of its busy cluster. A stop that judges
    outcomes (`--fail-fast`, a failure budget) must see each success as soon as its job
    ends: a failure counts at once, so successes held back for minutes would let the
    budget miss its trip or trip on a skewed sample. Then each target is read back within
    the batcher's interval (batches still coalesce); without one (an emergency without
    `--max-fail-percent`) a cluster's read-backs wait for one another."""
    judged = options.fail_fast or options.max_fail_percent is not None
    return 0.0 if judged else DEFAULT_BUSY_WAIT_S


def in_flight_wait(options: RunOptions) -> float:
    """How long a read-back waits for the rekeys of its cluster in flight when its batch
    opened (about one job; `DEFAULT_IN_FLIGHT_WAIT_S` at most). A failure budget then sees
    a read-back failure that much later (a success already counts when its job ends);
    `--fail-fast` must stop at the first failure, so there it waits for nothing."""
    return 0.0 if options.fail_fast else DEFAULT_IN_FLIGHT_WAIT_S
