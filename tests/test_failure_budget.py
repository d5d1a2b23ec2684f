"""The failure budget's arithmetic, including successes counted when their job ends."""

from __future__ import annotations

from orchestrator.core.failure_budget import FailureBudget
from orchestrator.core.targets import Outcome


def test_a_failure_beyond_the_percent_trips_once_the_sample_is_reached() -> None:
    budget = FailureBudget(max_fail_percent=10, min_sample=5)
    budget.record(Outcome.FAILED)
    assert not budget.exceeded  # 1 of 1, but below the minimum sample
    for _ in range(3):
        budget.record(Outcome.REKEYED)
    assert not budget.exceeded
    budget.record(Outcome.REKEYED)
    assert budget.exceeded  # 1 of 5 > 10 %


def test_job_successes_count_at_once_and_are_not_counted_twice() -> None:
    """Read-backs wait for a batch: the job's success is the sample, the outcome later
    adds only a failure the read-back found."""
    budget = FailureBudget(max_fail_percent=50, min_sample=4)
    for _ in range(4):
        budget.record_job_success()
    assert (budget.finished, budget.failures) == (4, 0)
    budget.record(Outcome.REKEYED, sampled=True)
    budget.record(Outcome.REKEYED, sampled=True)
    assert (budget.finished, budget.failures) == (4, 0)
    budget.record(Outcome.UNVERIFIED, sampled=True)
    budget.record(Outcome.UNVERIFIED, sampled=True)
    budget.record(Outcome.UNVERIFIED)  # a target never sampled
    assert (budget.finished, budget.failures) == (5, 3)
    assert budget.exceeded  # 3 of 5 > 50 %


def test_no_budget_never_trips() -> None:
    budget = FailureBudget(max_fail_percent=None, min_sample=1)
    for _ in range(10):
        budget.record(Outcome.FAILED)
    assert not budget.exceeded
