"""Backoff delays stay within their bounds; budgets stop retry storms."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.backoff import (
    RetryBudget,
    backoff_ceiling,
    full_jitter,
    retry_after_delay,
    try_spend_all,
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
