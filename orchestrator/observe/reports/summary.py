"""Counting a run's rows: totals, per cluster, per error code, durations (pure functions).

The recap table, every report format and `report.json` count through these helpers, so
they cannot disagree about a run.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter

from orchestrator.core import outcomes
from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.exitcodes import exit_code as exit_code_of
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus, TargetRow
from orchestrator.observe import hints

PENDING = "pending"  # no terminal outcome yet (an active or interrupted run)

RUN_OUTCOMES: tuple[str, ...] = outcomes.RUN_OUTCOMES
PLAN_OUTCOMES: tuple[str, ...] = outcomes.PLAN_VERDICTS


# A row's sort key: its TargetKey (cluster, then svm); the row's own key object, so a sort
# makes no key of its own (a tuple each would be 5.6 MB more at 100,000 targets).
by_key = attrgetter("key")


def provider_counts(rows: Iterable[TargetRow]) -> dict[str, int]:
    """Targets per provider (`aws`, `azure`, `gcp`, `barbican`; `none` when the target
    has no key manager the run could use)."""
    counted = Counter(row.provider or "none" for row in rows)
    return dict(sorted(counted.items()))


def is_plan(run: RunRecord) -> bool:
    """Plan runs end targets `ready` / `not_ready` instead of an Outcome."""
    return run.mode is RunMode.PLAN


def outcome_names(run: RunRecord) -> tuple[str, ...]:
    """The outcome columns of this run's mode, in display order."""
    return PLAN_OUTCOMES if is_plan(run) else RUN_OUTCOMES


def outcome_of(row: TargetRow) -> str:
    """The row's outcome, or `pending` while it has none."""
    return row.outcome or PENDING


def is_success(run: RunRecord, row: TargetRow) -> bool:
    """Rekeyed (run) or ready (plan): everything else belongs in failed.txt."""
    del run  # a plan row is never `rekeyed`, a run row never `ready`
    return outcomes.is_success(row.outcome)


def count_outcomes(run: RunRecord, rows: Iterable[TargetRow]) -> dict[str, int]:
    """Every outcome of the run's mode (zeros included), plus `pending` when any is."""
    counts = Counter(outcome_of(row) for row in rows)
    totals = {name: counts.pop(name, 0) for name in outcome_names(run)}
    # Unexpected values stay visible rather than silently dropped.
    return totals | dict(sorted(counts.items()))


def retries(row: TargetRow) -> int:
    """A target's retries: its attempts after the first (each one a POST sent again).

    The one definition the progress display, the recap and every report count by. A
    pause to settle an uncertain POST is not a retry (nothing is sent), and neither is an
    error that ended the target with no attempt after it.
    """
    return max(0, row.attempts - 1)


def retries_by_target(rows: Iterable[TargetRow]) -> Counter[str]:
    """Retries per target (`cluster/svm`)."""
    return Counter({str(row.key): retries(row) for row in rows})


def duration(row: TargetRow) -> float | None:
    """Seconds from the target's first action to its outcome, when both are known."""
    if row.started_at is None or row.finished_at is None:
        return None
    return max(0.0, row.finished_at - row.started_at)


def span(rows: Iterable[TargetRow]) -> float | None:
    """Seconds from the first target's start to the last target's finish."""
    starts = [row.started_at for row in rows if row.started_at is not None]
    ends = [row.finished_at for row in rows if row.finished_at is not None]
    if not starts or not ends:
        return None
    return max(0.0, max(ends) - min(starts))


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values`."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def by_cluster(rows: Iterable[TargetRow]) -> dict[str, list[TargetRow]]:
    """Rows grouped by cluster name, clusters and targets sorted."""
    groups: dict[str, list[TargetRow]] = defaultdict(list)
    for row in sorted(rows, key=by_key):
        groups[row.key.cluster].append(row)
    return dict(sorted(groups.items()))


@dataclass
class ErrorGroup:
    """Every target that ended with one error code (and class)."""

    code: str | None
    error_class: str | None
    hint: str
    message: str
    count: int = 0
    clusters: set[str] = field(default_factory=set)
    targets: list[str] = field(default_factory=list)  # `cluster/svm`, sorted

    @property
    def description(self) -> str:
        return hints.describe_code(self.code)


def error_groups(rows: Iterable[TargetRow]) -> list[ErrorGroup]:
    """Errors grouped by (code, class), most frequent first."""
    groups: dict[tuple[str | None, str | None], ErrorGroup] = {}
    for row in sorted(rows, key=by_key):
        if row.error_code is None and row.error_class is None and row.error_message is None:
            continue
        group = groups.setdefault(
            (row.error_code, row.error_class),
            ErrorGroup(
                code=row.error_code,
                error_class=row.error_class,
                hint=hints.hint_for(row.error_code, recorded=row.error_hint),
                message=row.error_message or "",
            ),
        )
        group.count += 1
        group.clusters.add(row.key.cluster)
        group.targets.append(str(row.key))
    return sorted(groups.values(), key=lambda g: (-g.count, g.code or "", g.error_class or ""))


@dataclass
class ReasonGroup:
    """Every target not done as asked for one reason: outcome, reason and error code."""

    outcome: str
    reason: str | None
    code: str | None
    hint: str
    message: str
    targets: list[str] = field(default_factory=list)  # `cluster/svm`, sorted

    @property
    def label(self) -> str:
        """`failed`, `skipped: unsupported_version`, `unverified: read_back_failed`."""
        return self.outcome + (f": {self.reason}" if self.reason else "")


def reason_groups(rows: Iterable[TargetRow]) -> list[ReasonGroup]:
    """Every target not rekeyed (plan: not ready), grouped, with the hint for its reason.

    Unlike `error_groups`, targets without an error (an unverified read-back, a skip for
    an old ONTAP version, an abort) are here too: this is the list someone acts on.
    """
    groups: dict[tuple[str, str | None, str | None], ReasonGroup] = {}
    for row in sorted(rows, key=by_key):
        if outcomes.is_success(row.outcome):
            continue
        outcome = outcome_of(row)
        group = groups.setdefault(
            (outcome, row.reason, row.error_code),
            ReasonGroup(
                outcome=outcome,
                reason=row.reason,
                code=row.error_code,
                hint=hints.hint_for_outcome(row.reason, row.error_code, row.error_hint),
                message=row.error_message or "",
            ),
        )
        group.targets.append(str(row.key))
    return sorted(groups.values(), key=lambda g: (-len(g.targets), g.label, g.code or ""))


def names(targets: Sequence[str], limit: int) -> str:
    """`a/1, a/2, b/1 and 4 more`: the first `limit` names of a list."""
    shown = ", ".join(targets[:limit])
    return shown + (f" and {len(targets) - limit} more" if len(targets) > limit else "")


def reason_counts(rows: Iterable[TargetRow]) -> Counter[str]:
    """How often each reason appears among the rows that have one."""
    return Counter(row.reason for row in rows if row.reason)


def exit_code(run: RunRecord, rows: Sequence[TargetRow]) -> ExitCode | None:
    """The exit code the run ended (or would end) with; None while it is still active."""
    if run.status is RunStatus.ACTIVE and not is_plan(run):
        return None
    return exit_code_of(run.mode, run.status, [row.outcome for row in rows])
