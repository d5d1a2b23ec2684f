"""The order targets start in, how they are cut into waves, and how fast they start."""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, zip_longest

import anyio
from anyio.abc import TaskGroup

from orchestrator.core.readiness import NOT_READY_FACT
from orchestrator.core.waves import parse_waves, wave_sizes
from orchestrator.engine.context import ClusterContext
from orchestrator.ledger.records import TargetRow


def order_rows(rows: Sequence[TargetRow], *, emergency: bool) -> list[TargetRow]:
    """Ready targets first, then those discovery found not ready (the plan's verdict): a
    not-ready target never leads the canary or a wave while a ready one waits. Within each,
    priority first (higher first), then name; a normal run also interleaves clusters so
    the canary and the early waves touch many clusters a little, not one cluster a lot."""
    ready = [row for row in rows if NOT_READY_FACT not in row.facts]
    not_ready = [row for row in rows if NOT_READY_FACT in row.facts]
    return _ranked(ready, emergency) + _ranked(not_ready, emergency)


def _ranked(rows: Sequence[TargetRow], emergency: bool) -> list[TargetRow]:
    # The key's fields, not the key: `TargetKey`'s generated `__lt__` compares through
    # Python code (~35 ms for 10,000 rows), a tuple of strings in C (the same order:
    # `TargetKey` orders by cluster, then SVM).
    ranked = sorted(rows, key=lambda row: (-row.priority, row.key.cluster, row.key.svm))
    if emergency:
        return ranked
    per_cluster: dict[str, list[TargetRow]] = defaultdict(list)
    for row in ranked:
        per_cluster[row.key.cluster].append(row)
    rounds = zip_longest(*per_cluster.values())
    return [row for row in chain.from_iterable(rounds) if row is not None]


def cut_waves(rows: Sequence[TargetRow], spec: str) -> list[list[TargetRow]]:
    """Split ordered rows into waves per `--waves` (e.g. `1,10%,100%`)."""
    if not rows:
        return []
    sizes = wave_sizes(len(rows), parse_waves(spec))
    waves, start = [], 0
    for size in sizes:
        waves.append(list(rows[start : start + size]))
        start += size
    return waves


QUEUED_ROUNDS = 1  # beyond the cluster's limit, targets queued for its slots: one round

Starter = Callable[[TargetRow, Callable[[], None]], None]
"""Starts one target's task; the task calls the callback the moment it begins."""


LANE_SLACK = 1.25  # lanes beyond what fills the global limit: a cluster finishing its
# last round overlaps the next cluster's first


def start_fed(
    group: TaskGroup,
    rows: Sequence[TargetRow],
    clusters: Mapping[str, ClusterContext],
    start: Starter,
    *,
    concurrency: int | None = None,
) -> None:
    """Start `rows` in their order, each cluster's only as fast as it takes them up.

    A task per pending target (its coroutine, scopes, contexts and row copy: ~20 KB each)
    made memory grow with the fleet, 10,000 targets waiting for 1,000 slots. One feeder
    per cluster starts the next target only while fewer than the cluster's limit plus
    `QUEUED_ROUNDS` rounds of targets hold or queue for its slots, so a freed slot is
    taken up at once; targets waiting without slots (a read-back, a backoff) do not count.

    With `concurrency` (the global limit; None for an emergency, whose priority order is
    across clusters), see `cluster_lanes`: only as many clusters are fed at once as
    fill it.
    """
    per_cluster: dict[str, deque[TargetRow]] = defaultdict(deque)  # each row taken out
    for row in rows:  # when its target starts: the task holds it from then on
        per_cluster[row.key.cluster].append(row)
    limits = [clusters[name].limiter.total_tokens for name in per_cluster]
    feeders = Feeders(group, clusters, start, cluster_lanes(limits, concurrency))
    for name, queue in per_cluster.items():
        feeders.add(name, queue)


class Feeders:
    """`start_fed`'s feeders, one per cluster, added one cluster at a time: all at once by
    `start_fed`, or each as discovery finds its rows (`engine.discovering`). `lanes`
    (`cluster_lanes`) is how many clusters are fed at once, None for all; they take the
    lanes in the order they are added."""

    def __init__(
        self,
        group: TaskGroup,
        clusters: Mapping[str, ClusterContext],
        start: Starter,
        lanes: int | None,
    ) -> None:
        self._group, self._clusters, self._start = group, clusters, start
        self._gate = None if lanes is None else anyio.Semaphore(lanes)

    def add(
        self, name: str, rows: deque[TargetRow], on_lane: Callable[[], None] | None = None
    ) -> None:
        """Feed cluster `name`'s `rows` (taken over: emptied as they start), in order;
        `on_lane` is called once the feeder has its lane (before its first start)."""
        cluster = self._clusters[name]
        self._group.start_soon(_feed, cluster, rows, self._start, self._gate, on_lane)


def cluster_lanes(limits: Sequence[float], concurrency: int | None) -> int | None:
    """How many clusters are fed at once, None for all of them.

    When the clusters' limits add up to more than the global limit (2,500 clusters x 4
    under `--concurrency 1000`), feeding every cluster at once spreads the global slots
    over all of them: each cluster gets a slot now and then, its idle connections expire
    between its requests and every POST pays a new TLS handshake, on both sides (measured:
    ~11 ms of CPU per target instead of ~4). Fed a few clusters at a time, in the run's
    order, each cluster runs at its own limit from its first target to its last over warm
    connections, and fewer clusters are mid-rotation at any moment. Order, limits and
    waves are unchanged: the cluster and global slots still decide who runs."""
    room = sum(limits)
    if concurrency is None or not limits or room <= concurrency:
        return None
    return max(1, math.ceil(LANE_SLACK * concurrency * len(limits) / room))


async def _feed(
    cluster: ClusterContext,
    rows: deque[TargetRow],
    start: Starter,
    lanes: anyio.Semaphore | None,
    on_lane: Callable[[], None] | None = None,
) -> None:
    if lanes is None:
        if on_lane is not None:
            on_lane()
        await _feed_rows(cluster, rows, start)
        return
    async with lanes:  # released once the last row has started: its last round overlaps
        if on_lane is not None:
            on_lane()
        await _feed_rows(cluster, rows, start)


async def _feed_rows(cluster: ClusterContext, rows: deque[TargetRow], start: Starter) -> None:
    cap = cluster.limiter.total_tokens * (1 + QUEUED_ROUNDS)
    while rows:
        await cluster.room_for(int(cap))
        # It counts as `starting` until its first step, where it queues for its slots
        # before its first wait: a count, not an event awaited per target (a trip of the
        # feeder through the event loop for each one).
        cluster.starting += 1
        start(rows.popleft(), cluster.target_began)
