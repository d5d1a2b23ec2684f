"""The per-cluster circuit breaker: alone, and inside a run."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.engine.breaker import Admission, BreakerState, CircuitBreaker
from tests.simfleet import Runner, scenario, sim_fleet

pytestmark = pytest.mark.anyio


async def test_failures_open_then_one_probe_then_dead() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown_s=0.05)
    breaker.record_transport_failure()
    assert breaker.state is BreakerState.CLOSED
    # The clock is read before the failure that opens the circuit: the cool-down counts
    # from that failure, so the wait below is >= 0.05 s however late this task runs (read
    # after it, a busy machine that delays the task shortens the measured wait: it flaked).
    start = anyio.current_time()
    breaker.record_transport_failure()
    assert breaker.state is BreakerState.OPEN
    assert await breaker.admit() is Admission.PROBE  # after the cool-down
    assert anyio.current_time() - start >= 0.05 - 1e-9
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_transport_failure()
    assert breaker.state is BreakerState.DEAD
    assert await breaker.admit() is None


async def test_a_successful_probe_closes_the_circuit_for_everyone() -> None:
    breaker = CircuitBreaker(threshold=1, cooldown_s=0.01)
    breaker.record_transport_failure()
    assert await breaker.admit() is Admission.PROBE
    admitted: list[Admission | None] = []

    async def waiter() -> None:
        admitted.append(await breaker.admit())

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)  # waits while the probe is in flight
        await anyio.sleep(0.02)
        assert admitted == []
        breaker.record_success()
    assert admitted == [Admission.NORMAL]
    assert breaker.state is BreakerState.CLOSED


async def test_auth_trip_is_final() -> None:
    breaker = CircuitBreaker(threshold=5, cooldown_s=0.01)
    breaker.trip_auth()
    breaker.record_success()
    assert breaker.state is BreakerState.AUTH_FAILED
    assert await breaker.admit() is None


async def test_a_cluster_that_drops_every_post_is_never_rekeyed_nor_re_sent(
    run_sim: Runner,
) -> None:
    """Every POST to c002 is dropped: without a calibrated job search its absence proves
    nothing, so each target ends `unverified: cannot_settle` after ONE POST (the old
    engine re-sent, and its breaker opened on the re-sends); c001 is unaffected."""
    sim = sim_fleet(
        2, 4, scenario=scenario({"kind": "drop_before", "cluster": "c002", "rate": 1.0})
    )
    result = await run_sim(
        sim,
        breaker_threshold=2,
        breaker_cooldown_s=0.05,
        request_timeout_s=0.2,
        per_cluster=1,
        max_fail_percent=100.0,
    )
    outcomes = {str(r.key): (r.outcome, r.reason) for r in result.rows}
    assert {v for k, v in outcomes.items() if k.startswith("c001")} == {("rekeyed", None)}
    bad = {v for k, v in outcomes.items() if k.startswith("c002")}
    assert bad == {("unverified", "cannot_settle")}
    assert all(r.attempts == 1 for r in result.rows if r.key.cluster == "c002")
    assert sum(n for k, n in sim.rekeys().items() if k.startswith("c002")) == 0


async def test_a_probe_without_verdict_hands_the_probe_on() -> None:
    """A probe that only settled (no request verdict) must not leave others waiting."""
    breaker = CircuitBreaker(threshold=1, cooldown_s=0.01)
    breaker.record_transport_failure()
    probe = await breaker.admit()
    assert probe is Admission.PROBE
    breaker.release(probe)
    assert breaker.state is BreakerState.OPEN
    with anyio.fail_after(1):
        assert await breaker.admit() is Admission.PROBE
