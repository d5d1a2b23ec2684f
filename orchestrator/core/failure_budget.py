"""The failure budget: `--max-fail-percent` over a minimum sample, and `--fail-fast`.

`max_fail_percent` None is no budget at all (the emergency profile without an explicit
`--max-fail-percent`): failures never stop the run.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.core.outcomes import counts_against_budget
from orchestrator.core.targets import Outcome


@dataclass
class FailureBudget:
    max_fail_percent: float | None
    min_sample: int
    fail_fast: bool = False
    finished: int = 0
    failures: int = 0

    def record(self, outcome: Outcome, *, sampled: bool = False) -> None:
        """Count a target's outcome. `sampled`: the target was already counted as a
        success when its job ended (`record_job_success`), so only a failure its
        read-back turned up is added."""
        if outcome is Outcome.ABORTED:
            return
        if not sampled:
            self.finished += 1
        if counts_against_budget(outcome):
            self.failures += 1

    def record_job_success(self) -> None:
        """A rekey job ended in success and its read-back waits for a batch: the budget
        counts the success now (failures count the moment they are known, so successes
        held back would skew the sample and let the rollout run past its budget)."""
        self.finished += 1

    @property
    def fail_fast_tripped(self) -> bool:
        return self.fail_fast and self.failures > 0

    @property
    def exceeded(self) -> bool:
        """More than `max_fail_percent` failed, once at least `min_sample` finished."""
        if self.max_fail_percent is None or self.finished < self.min_sample:
            return False
        return self.failures * 100.0 > self.max_fail_percent * self.finished
