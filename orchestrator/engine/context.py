"""The shared state of a run and of each cluster, as the per-target procedure sees it."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio

from orchestrator.core.backoff import RetryBudget
from orchestrator.core.inventory import ClusterSpec, RetryOverride
from orchestrator.core.options import RunOptions
from orchestrator.core.settling import Calibration, CalibrationKind
from orchestrator.core.targets import AbortReason, Outcome
from orchestrator.engine.breaker import CircuitBreaker
from orchestrator.engine.readback import (
    DEFAULT_BUSY_WAIT_S,
    DEFAULT_IN_FLIGHT_WAIT_S,
    ReadBackBatcher,
)
from orchestrator.engine.recorder import LedgerWriter
from orchestrator.ontap.client import OntapClient


@dataclass
class ClusterContext:
    """One cluster: its client, its concurrency limit, its breaker, its retry budget and
    its read-back batcher (entered by the ClusterPool).

    `running` counts the cluster's targets taken up and not waiting for a read-back (or
    finished): while it is above zero, more read-backs are coming, and the batcher waits
    for them (up to its `busy_wait_s`); the last one to start waiting wakes it.

    `rekeying` holds the targets that hold their slots and are not waiting for a read-back
    (their rekeys are in flight): a batch waits for those in flight when it opened (up to
    its `in_flight_wait_s`), so a round of the cluster's jobs is read back together."""

    spec: ClusterSpec
    client: OntapClient
    limiter: anyio.CapacityLimiter
    breaker: CircuitBreaker
    budget: RetryBudget
    # what its rekey jobs look like, per (provider, operation) endpoint (core.settling)
    calibrations: dict[CalibrationKind, Calibration] = field(default_factory=dict)
    ended_seen_at: dict[str, float] = field(default_factory=dict)  # job uuid -> first seen ended
    running: int = 0
    starting: int = 0  # targets started by the feeder that have not run their first step
    read_back_wait_s: float = DEFAULT_BUSY_WAIT_S  # the batcher's `busy_wait_s`
    in_flight_wait_s: float = DEFAULT_IN_FLIGHT_WAIT_S  # the batcher's `in_flight_wait_s`
    rekeying: set[object] = field(default_factory=set)
    batcher: ReadBackBatcher = field(init=False)
    _room: anyio.Event | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.batcher = ReadBackBatcher(
            self.client,
            busy=self.busy,
            busy_wait_s=self.read_back_wait_s,
            in_flight=lambda: self.rekeying,
            in_flight_wait_s=self.in_flight_wait_s,
        )

    def busy(self) -> bool:
        return self.running > 0

    def target_started(self) -> None:
        self.running += 1

    def target_idle(self) -> None:
        """A target finished, or waits for its read-back: nothing more comes from it now."""
        self.running -= 1
        if self.running <= 0:
            self.batcher.wake()
        self._made_room()

    def rekey_in_flight(self, token: object) -> None:
        """A target (`token`: its slots) holds its slots: its rekey may be running."""
        self.rekeying.add(token)

    def rekey_settled(self, token: object) -> None:
        """The target gave its slots back, or waits for its read-back holding them."""
        self.rekeying.discard(token)
        self.batcher.wake()
        self._made_room()

    def wanting_slots(self) -> int:
        """The cluster's targets that hold its slots, queue for them, or were started and
        will queue at their first step."""
        stats = self.limiter.statistics()
        return stats.borrowed_tokens + stats.tasks_waiting + self.starting

    def target_began(self) -> None:
        """A target started by the feeder runs its first step (and queues for its slots
        before it first waits)."""
        self.starting -= 1

    async def room_for(self, cap: int) -> None:
        """Wait until fewer than `cap` of the cluster's targets hold or queue for its slots
        (the run starts a cluster's targets only as fast as they can take them up)."""
        while self.wanting_slots() >= cap:
            if self._room is None:
                self._room = anyio.Event()
            await self._room.wait()

    def _made_room(self) -> None:
        if self._room is not None:
            self._room.set()
            self._room = None

    def saw_ended(self, job_uuid: str, at: float) -> None:
        """Remember when this run first saw a job of the cluster ended (a lifetime witness)."""
        self.ended_seen_at.setdefault(job_uuid, at)


@dataclass
class RunContext:
    """What every target task of a run shares."""

    run_id: str
    options: RunOptions
    ledger: LedgerWriter
    limiter: anyio.CapacityLimiter
    budget: RetryBudget
    overrides: Mapping[str, RetryOverride]
    deadline: float | None = None  # anyio clock; no new attempt starts after it
    rand: random.Random = field(default_factory=random.Random)
    stop_reason: AbortReason | None = None
    stopped: anyio.Event = field(default_factory=anyio.Event)
    on_outcome: Callable[[Outcome, bool], None] | None = None  # the failure budget's hook
    on_job_success: Callable[[], None] | None = None  # ditto, for a deferred read-back
    on_retry: Callable[[], None] | None = None  # the progress display's retry counter

    def outcome_decided(self, outcome: Outcome, *, sampled: bool = False) -> None:
        """Called the moment a target's outcome is known, before its slot is released, so
        a stop (fail-fast, budget) takes effect before the next target can start.
        `sampled`: `job_succeeded` already counted this target."""
        if self.on_outcome is not None:
            self.on_outcome(outcome, sampled)

    def job_succeeded(self) -> None:
        """A target's job succeeded and its read-back is deferred to a batch (its slots
        given back): the failure budget counts the success now."""
        if self.on_job_success is not None:
            self.on_job_success()

    def stop(self, reason: AbortReason) -> None:
        """Stop scheduling: targets not in flight end `aborted`; in-flight ones finish."""
        if self.stop_reason is None:
            self.stop_reason = reason
            self.stopped.set()

    def past_deadline(self) -> bool:
        return self.deadline is not None and anyio.current_time() >= self.deadline

    async def sleep(self, seconds: float) -> None:
        """Sleep, waking early when the run stops (a waiting retry holds no slot)."""
        with anyio.move_on_after(seconds):
            await self.stopped.wait()
