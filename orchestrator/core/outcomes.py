"""Which outcomes count as what: the one owner of the outcome groupings.

The failure budget, the exit code, junit.xml, report.md/html, the recap and failed.txt all
ask these sets, so "did this target fail?" has one answer everywhere. Plan runs end their
targets in a `Verdict` (`ready` / `not_ready`) instead of an `Outcome`; the ledger stores
either in the row's `outcome` column, which is why the helpers take the stored value
(`None`: no outcome yet; `TargetRow.verdict` reads a plan row's back as its type).
"""

from __future__ import annotations

from typing import Final

from orchestrator.core.targets import Outcome, Verdict

READY: Final = Verdict.READY.value  # plan: the target would be rekeyed now
NOT_READY: Final = Verdict.NOT_READY.value  # plan: it would not, with a reason
PLAN_VERDICTS: Final = tuple(verdict.value for verdict in Verdict)
"""The plan's verdicts, in display order."""

RUN_OUTCOMES: Final = tuple(outcome.value for outcome in Outcome)
"""The run's outcomes, in display order."""

SUCCESS: Final = frozenset({Outcome.REKEYED.value, READY})
"""Done as asked: rekeyed (run) or ready (plan). Everything else goes into failed.txt."""

FAILURES: Final = frozenset({Outcome.FAILED, Outcome.EXHAUSTED, Outcome.UNVERIFIED})
"""Attempted and not rekeyed: these spend the failure budget and fail a junit case.
Skips decided by discovery or a closed cluster do not: the circuit breaker already deals
with a bad cluster."""

NOT_ATTEMPTED: Final = frozenset({Outcome.SKIPPED, Outcome.ABORTED})
"""Never started (a junit `skipped` case)."""


def is_success(outcome: str | None) -> bool:
    """Rekeyed or ready; `None` (no outcome yet) is not."""
    return outcome in SUCCESS


_FAILED_VALUES: Final = frozenset({NOT_READY, *(outcome.value for outcome in FAILURES)})


def is_failure(outcome: str | None) -> bool:
    """Attempted and not rekeyed (run), or not ready (plan)."""
    return outcome in _FAILED_VALUES


def counts_against_budget(outcome: Outcome) -> bool:
    """Whether a finished target spends the failure budget."""
    return outcome in FAILURES
