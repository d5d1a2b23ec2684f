"""Backoff delays stay within their bounds; budgets stop retry storms."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.backoff import (
    WAITS,
    Purpose,
    RetryBudget,
    WaitPolicy,
    backoff_ceiling,
    full_jitter,
    next_delay,
    retry_after_delay,
    try_spend_all,
    wait_until,
)

delays = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@given(
    attempt=st.integers(min_value=-5, max_value=10_000),
    base=delays,
    cap=delays,
    fraction=st.floats(allow_nan=True, allow_infinity=True),
)
def test_full_jitter_within_zero_and_cap(
    attempt: int, base: float, cap: float, fraction: float
) -> None:
    """Whatever the attempt and the random source, the delay lies in [0, cap]."""
    delay = full_jitter(attempt, base, cap, lambda: fraction)
    assert 0.0 <= delay <= cap
    assert not math.isnan(delay)


def test_ceiling_doubles_until_the_cap() -> None:
    """1, 2, 4, 8 ... seconds, never beyond the cap."""
    assert [backoff_ceiling(n, 1.0, 10.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]


def test_full_jitter_scales_the_ceiling() -> None:
    """rand() picks a point between 0 and the ceiling."""
    assert full_jitter(3, 1.0, 100.0, lambda: 0.5) == 2.0
    assert full_jitter(3, 1.0, 100.0, lambda: 1.0) == 4.0


@given(st.one_of(st.none(), st.floats(allow_nan=True)), delays)
def test_retry_after_is_capped(retry_after: float | None, cap: float) -> None:
    """Retry-After is honoured up to the cap, never negative; absent stays None."""
    delay = retry_after_delay(retry_after, cap)
    if retry_after is None or math.isnan(retry_after):
        assert delay is None
    else:
        assert delay is not None
        assert 0.0 <= delay <= cap


def test_budget_spends_until_empty() -> None:
    """A budget of 2 allows two retries, then refuses."""
    budget = RetryBudget(2)
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    assert budget.remaining == 0


def test_spend_all_is_all_or_nothing() -> None:
    """The run and the cluster budget are spent together, or not at all."""
    run, cluster = RetryBudget(5), RetryBudget(0)
    assert not try_spend_all([run, cluster])
    assert run.remaining == 5
    assert try_spend_all([run, RetryBudget(1)])
    assert run.remaining == 4


def test_negative_budget_refused() -> None:
    """A negative limit is a programming error."""
    with pytest.raises(ValueError, match="negative"):
        RetryBudget(-1)


# -- the wait policies (one table for every loop) -----------------------------------------

policies = st.builds(
    WaitPolicy,
    base_s=delays,
    cap_s=delays,
    factor=st.floats(min_value=1.0, max_value=4.0),
    jitter=st.booleans(),
)
fractions = st.floats(allow_nan=True, allow_infinity=True)


@given(policy=policies, attempt=st.integers(min_value=-5, max_value=10_000), fraction=fractions)
def test_next_delay_within_zero_and_cap(policy: WaitPolicy, attempt: int, fraction: float) -> None:
    """Whatever the policy, the try and the random source, a delay lies in [0, cap]."""
    delay = next_delay(policy, attempt, lambda: fraction)
    assert 0.0 <= delay <= policy.cap_s
    assert not math.isnan(delay)


@given(policy=policies, attempt=st.integers(min_value=0, max_value=200))
def test_ceilings_never_shrink(policy: WaitPolicy, attempt: int) -> None:
    """Each try's ceiling is at least the one before (a factor >= 1), up to the cap."""
    ceiling = replace(policy, jitter=False)
    assert next_delay(ceiling, attempt + 1) >= next_delay(ceiling, attempt)


@given(policy=policies, attempt=st.integers(min_value=1, max_value=100), fraction=fractions)
def test_next_delay_deterministic_given_rand(
    policy: WaitPolicy, attempt: int, fraction: float
) -> None:
    """The same policy, try and random value give the same delay; a jittered delay never
    exceeds the unjittered ceiling."""
    first = next_delay(policy, attempt, lambda: fraction)
    assert first == next_delay(policy, attempt, lambda: fraction)
    assert first <= next_delay(replace(policy, jitter=False), attempt)


@given(
    policy=policies,
    attempt=st.integers(min_value=1, max_value=100),
    retry_after=st.floats(min_value=0, max_value=1e6),
    cap=delays,
)
def test_retry_after_never_shortens_a_longer_policy(
    policy: WaitPolicy, attempt: int, retry_after: float, cap: float
) -> None:
    """`Retry-After` under the LONGER hint: the longer of both, the hint capped."""
    plain = next_delay(policy, attempt, lambda: 0.5)
    hinted = next_delay(
        policy, attempt, lambda: 0.5, retry_after=retry_after, retry_after_cap_s=cap
    )
    assert hinted == max(plain, min(retry_after, cap))


def test_a_jittered_policy_needs_a_random_source() -> None:
    """Without `rand` a jittered delay cannot be drawn: a programming error, said so."""
    with pytest.raises(ValueError, match="random source"):
        next_delay(WAITS[Purpose.RETRY], 1)


def test_a_shrinking_factor_is_refused() -> None:
    """A factor below 1 would make later tries wait less: refused."""
    with pytest.raises(ValueError, match="factor"):
        WaitPolicy(base_s=1.0, cap_s=2.0, factor=0.5)


def test_every_loop_keeps_its_delays() -> None:
    """The table holds the delays the loops had before it (the values tests and docs know)."""
    poll = WAITS[Purpose.POLL]
    assert [next_delay(poll, n) for n in range(1, 8)] == [
        1.0,
        1.5,
        2.25,
        3.375,
        5.0625,
        7.59375,
        10.0,
    ]
    assert (poll.tries, poll.within_s) == (3, 3600.0)
    retry = WAITS[Purpose.RETRY]
    assert [next_delay(retry, n, lambda: 1.0) for n in (1, 2, 5, 6, 99)] == [1, 2, 16, 30, 30]
    assert next_delay(retry.scaled(0.25), 3, lambda: 1.0) == 1.0  # emergency: a quarter
    assert next_delay(retry.bounded(5.0, 60.0), 2, lambda: 0.5) == 5.0
    settle, early = WAITS[Purpose.SETTLE], WAITS[Purpose.SETTLE_EARLY]
    assert (next_delay(settle, 1), next_delay(settle, 9), settle.tries) == (2.0, 2.0, 8)
    assert [wait_until(early, r) for r in (0.01, 3.0, 99.0)] == [0.05, 3.0, 15.0]
    assert early.tries == 300
    read_back, pending = WAITS[Purpose.READ_BACK], WAITS[Purpose.READ_BACK_PENDING]
    assert (next_delay(read_back, 1), read_back.tries, pending.tries) == (1.0, 3, 120)
    batch = WAITS[Purpose.READ_BACK_BATCH]
    assert (batch.base_s, batch.within_s) == (1.0, 120.0)
    lock = WAITS[Purpose.LOCK]
    assert (next_delay(lock, 1), lock.within_s) == (0.01, 0.25)


def test_discovery_retries_after_half_a_second_then_one() -> None:
    """Discovery: 3 attempts, 0.5 s then 1 s between them; a server's Retry-After replaces
    the pause (capped at 5 s), a zero one does not."""
    policy = WAITS[Purpose.DISCOVERY]
    assert policy.tries == 3
    assert [next_delay(policy, n) for n in (1, 2)] == [0.5, 1.0]
    assert next_delay(policy, 2, retry_after=0.2) == 0.2
    assert next_delay(policy, 1, retry_after=60.0) == 5.0
    assert next_delay(policy, 2, retry_after=0.0) == 1.0
