"""Discovering a run's clusters: every one before the plan, or each into the rotation as
it answers (`core.options.overlaps_discovery`).

Overlapped, a cluster's rows are committed to the ledger in one transaction the moment it
is discovered, before any of its targets starts (so an intent is never written for a row
the ledger lacks), and its pending targets go to the rotation's feeders then. The run's
record is created with the first cluster that has rows: a run with no target at all is
never recorded (it is exit 2, as before). A kill while discovery goes on leaves clusters
without rows; `resume` discovers those (`runner.resume_run`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field

import anyio

from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import SkipReason, TargetKey, TargetState
from orchestrator.engine.discovery import Discovery, discover, target_rows
from orchestrator.engine.planner import with_readiness
from orchestrator.engine.pool import ClusterPool
from orchestrator.engine.scheduling import order_rows
from orchestrator.engine.settle import with_recorded_jobs
from orchestrator.engine.store import RunStore
from orchestrator.ledger.records import RunRecord, TargetRow

Take = Callable[[str, Discovery, Callable[[], None]], Awaitable[None]]
"""Takes a cluster's discovery, and how to give its place back (`discover_each`)."""
Feed = Callable[[str, deque[TargetRow], Callable[[], None]], None]
"""Feeds a cluster's pending rows to the rotation, with what to call once they are under
way (its feeder has its lane)."""
ClusterRowsSeen = Callable[[str, list[TargetRow]], None]  # e.g. the plan summary's line


STREAM_WIDTH = 64  # clusters an overlapped run discovers at once
STREAM_GRACE_S = 5.0  # a cluster discovering longer waits on the network: it steps aside


async def discover_each(
    pool: ClusterPool,
    options: RunOptions,
    take: Take,
    names: Iterable[str] | None = None,
    *,
    stream: bool = False,
    ahead: int | None = None,
) -> None:
    """Discover the pool's clusters (or `names` of them) concurrently, `--concurrency` at a
    time; `take` each one's discovery as it comes in, with what to call once its targets
    are under way (a no-op unless `ahead`).

    `stream` (an overlapped run): discovery at the rotation's pace, not all at once. Every
    cluster discovered at once shares the engine's one thread evenly, so they all finish
    near the end (250 clusters: the first at 1.2 of 1.5 s), and meanwhile the rotation's
    targets wait for that thread (2,500 clusters all at once: discovery stretched from 18
    to 44-51 s, the rotation at ~0.6 of its pace meanwhile, no wall time gained). So at
    most `STREAM_WIDTH` clusters are discovered at once and, with `ahead` (the rotation's
    lanes, `scheduling.cluster_lanes`), at most `ahead + STREAM_WIDTH` clusters are
    discovered or being discovered whose targets are not under way: discovery keeps about
    one set of lanes' worth of clusters ready, and no more. A cluster still discovering
    after `STREAM_GRACE_S` (far, or hung until its discovery timeout) steps out of both
    counts."""
    limiter = anyio.CapacityLimiter(max(1, options.concurrency))
    width = anyio.Semaphore(STREAM_WIDTH) if stream else None
    ready = anyio.Semaphore(ahead + STREAM_WIDTH) if stream and ahead is not None else None
    discovery_timeout_s = options.discovery_timeout_s

    async def one(name: str) -> None:
        queued, discovering = _Token(ready), _Token(width)
        try:
            async with limiter:
                await queued.take()
                await discovering.take()
                context = pool[name]
                work = discover(context.client, context.spec, timeout_s=discovery_timeout_s)
                discovery = await (
                    work if width is None else _within_grace(work, queued, discovering)
                )
                discovering.give_back()
            await take(name, discovery, queued.give_back)
        except BaseException:
            queued.give_back()
            discovering.give_back()
            raise

    async with anyio.create_task_group() as group:
        for name in pool.clusters if names is None else names:
            group.start_soon(one, name)


class _Token:
    """A place of one of `discover_each`'s counts (none: `semaphore` None), given back
    once however many times it is asked to."""

    def __init__(self, semaphore: anyio.Semaphore | None) -> None:
        self._semaphore = semaphore
        self._held = False

    async def take(self) -> None:
        if self._semaphore is not None:
            await self._semaphore.acquire()
            self._held = True

    def give_back(self) -> None:
        if self._held and self._semaphore is not None:
            self._held = False
            self._semaphore.release()


async def _within_grace(work: Awaitable[Discovery], *tokens: _Token) -> Discovery:
    """`work`, its `tokens` given back if it is still going after `STREAM_GRACE_S`."""

    async def step_aside_later() -> None:
        await anyio.sleep(STREAM_GRACE_S)
        for token in tokens:
            token.give_back()

    async with anyio.create_task_group() as group:
        group.start_soon(step_aside_later)
        discovery = await work
        group.cancel_scope.cancel()
    return discovery


def cluster_rows(
    run_id: str,
    pool: ClusterPool,
    name: str,
    discovery: Discovery,
    selection: Selection,
    options: RunOptions,
) -> list[TargetRow]:
    """One discovered cluster's selected targets with the plan's readiness; a cluster that
    refused the login has its circuit opened for the run."""
    if discovery.skip_reason is SkipReason.AUTH_FAILED and discovery.rule is not None:
        pool[name].breaker.trip_auth()
    found = target_rows(run_id, pool[name].spec, discovery, selection, options.rekey)
    return with_readiness(found, discovery, skip_not_ready=options.skip_not_ready)


@dataclass
class DiscoveryFeed:
    """Discovery into a running rotation: each cluster's rows into the ledger, then its
    pending targets into `feed`; the targets' outcomes (and rows, when kept) tallied for
    the run's close. `recorded`: earlier runs' rekey jobs per target (`settle`)."""

    record: RunRecord
    pool: ClusterPool
    store: RunStore
    selection: Selection
    options: RunOptions
    recorded: dict[TargetKey, set[str]]
    outcomes: dict[TargetKey, str | None]
    kept: dict[TargetKey, TargetRow] | None
    seen: ClusterRowsSeen | None = None
    created: bool = False  # the run's record is in the ledger
    targets: int = 0
    pending: int = 0
    _creating: anyio.Lock = field(default_factory=anyio.Lock)

    async def run(
        self, feed: Feed, names: Collection[str] | None = None, ahead: int | None = None
    ) -> None:
        """Discover every cluster (or `names`), feeding each one's targets as it answers;
        `ahead`: see `discover_each`."""

        async def take(name: str, discovery: Discovery, under_way: Callable[[], None]) -> None:
            rows = self._rows(name, discovery)
            if rows:
                await self._record(rows)
                if self.seen is not None:
                    self.seen(name, rows)
            pending = order_rows(
                [row for row in rows if row.state is not TargetState.DONE], emergency=False
            )
            if not pending:
                under_way()
                return
            self.pending += len(pending)
            feed(name, deque(pending), under_way)

        await discover_each(self.pool, self.options, take, names, stream=True, ahead=ahead)

    def _rows(self, name: str, discovery: Discovery) -> list[TargetRow]:
        rows = cluster_rows(
            self.record.run_id, self.pool, name, discovery, self.selection, self.options
        )
        recorded = self.recorded
        return [
            with_recorded_jobs(row, recorded[row.key]) if row.key in recorded else row
            for row in rows
        ]

    async def _record(self, rows: list[TargetRow]) -> None:
        """The run's record (with the first rows), then these rows, committed."""
        async with self._creating:
            if not self.created:
                await self.store.create_run(self.record)
                self.created = True
        await self.store.add_targets(rows)
        self.targets += len(rows)
        for row in rows:
            self.outcomes[row.key] = row.outcome
        if self.kept is not None:
            self.kept.update((row.key, row) for row in rows)
