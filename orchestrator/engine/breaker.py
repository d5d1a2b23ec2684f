"""A per-cluster circuit breaker.

A 401 trips it for good (retrying a login can lock the account). N consecutive transport
failures open it; after a cool-down exactly one target is let through as a half-open
probe: if the probe reaches ONTAP the circuit closes, otherwise it stays open for the rest
of the run and every remaining target of the cluster is `skipped: circuit_open`.
Waiting for the cool-down holds no concurrency slot.
"""

from __future__ import annotations

from enum import StrEnum

import anyio

from orchestrator.observe import events
from orchestrator.observe.logging import EventLogger

log = EventLogger()  # structlog.get_logger() without its layers per call


class BreakerState(StrEnum):
    CLOSED = "closed"  # requests flow
    OPEN = "open"  # cooling down; one probe after `reopen_at`
    HALF_OPEN = "half_open"  # the probe is in flight
    DEAD = "dead"  # the probe failed: no more requests to this cluster
    AUTH_FAILED = "auth_failed"  # a 401: no more requests to this cluster, ever


class Admission(StrEnum):
    """How a request was let through: in normal flow, or as the one half-open probe."""

    NORMAL = "normal"
    PROBE = "probe"


class CircuitBreaker:
    def __init__(self, *, threshold: int, cooldown_s: float) -> None:
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self.state = BreakerState.CLOSED
        self._failures = 0
        self._reopen_at = 0.0
        self._changed = anyio.Event()

    @property
    def blocked(self) -> bool:
        """True when no request may ever be sent to this cluster again in this run."""
        return self.state in (BreakerState.DEAD, BreakerState.AUTH_FAILED)

    async def admit(self) -> Admission | None:
        """Wait until a request may be sent; None when the cluster is closed for good."""
        while True:
            if self.state is BreakerState.CLOSED:
                return Admission.NORMAL
            if self.blocked:
                return None
            if self.state is BreakerState.OPEN and anyio.current_time() >= self._reopen_at:
                self._set(BreakerState.HALF_OPEN)
                return Admission.PROBE
            await self._wait_for_change()

    def valid(self, admission: Admission) -> bool:
        """Whether an admission still holds (the circuit may have opened while it queued)."""
        if admission is Admission.PROBE:
            return self.state is BreakerState.HALF_OPEN
        return self.state is BreakerState.CLOSED

    def release(self, admission: Admission) -> None:
        """The step is over. A probe that reached no verdict (it stopped, or only settled
        nothing) hands the probe on, so the targets waiting behind it never hang."""
        if admission is Admission.PROBE and self.state is BreakerState.HALF_OPEN:
            self._reopen_at = anyio.current_time()
            self._set(BreakerState.OPEN)

    def record_success(self) -> None:
        """ONTAP answered (any ONTAP answer proves the cluster is reachable)."""
        self._failures = 0
        if self.state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
            self._set(BreakerState.CLOSED)

    def record_transport_failure(self) -> None:
        if self.blocked:
            return
        if self.state is BreakerState.HALF_OPEN:
            log.error(events.CLUSTER_CIRCUIT_OPENED, cause="half_open_probe_failed")
            self._set(BreakerState.DEAD)
            return
        self._failures += 1
        if self.state is BreakerState.CLOSED and self._failures >= self.threshold:
            self._reopen_at = anyio.current_time() + self.cooldown_s
            log.error(
                events.CLUSTER_CIRCUIT_OPENED,
                cause="consecutive_transport_failures",
                failures=self._failures,
                cooldown_s=self.cooldown_s,
            )
            self._set(BreakerState.OPEN)

    def trip_auth(self) -> None:
        """A 401: stop the cluster at once and for good."""
        self._set(BreakerState.AUTH_FAILED)

    def _set(self, state: BreakerState) -> None:
        self.state = state
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait_for_change(self) -> None:
        changed = self._changed
        if self.state is BreakerState.OPEN:
            with anyio.move_on_after(max(0.0, self._reopen_at - anyio.current_time())):
                await changed.wait()
        else:
            await changed.wait()
