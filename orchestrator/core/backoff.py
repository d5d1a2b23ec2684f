"""Backoff arithmetic and retry budgets: pure, deterministic given `rand`.

Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter"): spreading retries uniformly over [0, ceiling] keeps many targets that failed
together from retrying together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

# 2**63 seconds is far past any cap; stopping the doubling there keeps the float finite.
_MAX_DOUBLINGS = 63


def backoff_ceiling(attempt: int, base_s: float, cap_s: float) -> float:
    """`min(cap, base * 2**(attempt-1))`: the upper end of attempt `attempt`'s delay."""
    cap = max(0.0, cap_s)
    base = max(0.0, base_s)
    doublings = min(max(0, attempt - 1), _MAX_DOUBLINGS)
    return min(cap, base * 2.0**doublings)


def full_jitter(attempt: int, base_s: float, cap_s: float, rand: Callable[[], float]) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**(attempt-1))].

    Always within [0, max(cap, 0)], whatever `attempt` (1 is the first retry) and whatever
    `rand` returns (values outside [0, 1] or NaN are clamped).
    """
    fraction = rand()
    fraction = 0.0 if math.isnan(fraction) else min(1.0, max(0.0, fraction))
    return fraction * backoff_ceiling(attempt, base_s, cap_s)


def retry_after_delay(retry_after: float | None, cap_s: float) -> float | None:
    """ONTAP's `Retry-After` (seconds) clamped to [0, cap]; None when there is none."""
    if retry_after is None or math.isnan(retry_after):
        return None
    return min(max(0.0, cap_s), max(0.0, retry_after))


class RetryBudget:
    """A pure counter of retries left: one per run, one per cluster.

    A budget stops retry storms: when many targets fail at once, only `limit` retries
    are spent in total, and the rest end `exhausted`.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("a retry budget cannot be negative")
        self.limit = limit
        self.spent = 0

    @property
    def remaining(self) -> int:
        """Retries still allowed."""
        return self.limit - self.spent

    def try_spend(self) -> bool:
        """Spend one retry if any is left; True when it was spent."""
        if self.spent >= self.limit:
            return False
        self.spent += 1
        return True

    def __repr__(self) -> str:
        return f"RetryBudget(limit={self.limit}, spent={self.spent})"


def try_spend_all(budgets: Iterable[RetryBudget]) -> bool:
    """Spend one retry from every budget, or from none when any is empty."""
    chosen = list(budgets)
    if any(budget.remaining <= 0 for budget in chosen):
        return False
    for budget in chosen:
        budget.try_spend()
    return True
