"""The rows the ledger stores and the reports read (plain, immutable values).

These types are the contract between the engine (writer), the ledger (storage) and the
reports (readers): `ontap-rekey report RUN_ID` renders a past run from exactly these rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.core.providers import Operation, Provider
from orchestrator.core.targets import TargetKey, TargetState, Verdict

_VERDICTS = frozenset(verdict.value for verdict in Verdict)


class RunMode(StrEnum):
    RUN = "run"  # a normal (quarterly) rotation
    EMERGENCY = "emergency"  # `run --emergency --reason ...`
    PLAN = "plan"  # a dry run: targets end `ready` / `not_ready`, nothing is POSTed


class RunStatus(StrEnum):
    ACTIVE = "active"  # running now, or crashed without closing (resume continues it)
    FINISHED = "finished"  # every target reached a terminal outcome
    ABORTED = "aborted"  # stopped by failure budget, fail-fast or deadline
    INTERRUPTED = "interrupted"  # SIGINT / SIGTERM; resume continues it


@dataclass(frozen=True)
class PlanEstimate:
    """The waves a run would use and how long it would take (a plan's, a run's preview)."""

    targets: int  # the targets it counts (a plan's ready ones, a run's pending ones)
    waves: tuple[int, ...]  # their wave sizes
    job_estimate_s: float  # the duration assumed per rekey job
    estimated_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "targets": self.targets,
            "waves": list(self.waves),
            "job_estimate_s": self.job_estimate_s,
            "estimated_s": self.estimated_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PlanEstimate:
        return cls(
            targets=int(data["targets"]),
            waves=tuple(int(size) for size in data["waves"]),
            job_estimate_s=float(data["job_estimate_s"]),
            estimated_s=float(data["estimated_s"]),
        )


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    mode: RunMode
    inventory_path: str
    inventory_sha256: str
    options: dict[str, Any]  # the effective run options (RunOptions.to_json), nothing else
    operator: str  # user@host
    started_at: float  # unix time
    status: RunStatus = RunStatus.ACTIVE
    reason: str | None = None  # emergency reason
    ended_at: float | None = None
    selection: dict[str, Any] = field(default_factory=dict)  # selectors as given
    # the clusters contacted with `tls: {verify: false}` (logged at the start, in every report)
    tls_verify_disabled: tuple[str, ...] = ()
    estimate: PlanEstimate | None = None  # a plan's waves and duration estimate


@dataclass(frozen=True)
class TargetRow:
    """One target of one run: its current state and, once DONE, its outcome."""

    run_id: str
    key: TargetKey
    state: TargetState = TargetState.PENDING
    outcome: str | None = None  # an Outcome value; a plan's rows: a Verdict value (`verdict`)
    reason: str | None = None  # SkipReason / AbortReason / not-ready reason
    config_uuid: str | None = None
    key_id_before: str | None = None
    key_id_intended: str | None = None
    key_id_after: str | None = None
    job_uuid: str | None = None
    attempts: int = 0
    wave: int | None = None
    priority: int = 0
    error_code: str | None = None
    error_message: str | None = None
    error_class: str | None = None
    error_hint: str | None = None
    intent_at: float | None = None  # when the last POST intent was committed (settling)
    started_at: float | None = None
    finished_at: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)  # plan: version, key store state, ...
    evidence: dict[str, Any] = field(default_factory=dict)  # core.lifecycle.Evidence, as JSON
    cluster_uuid: str | None = None  # the uuid the cluster reported when it was discovered
    provider: str | None = None  # a Provider value (None: a row of a v3 ledger, AWS)
    operation: str | None = None  # an Operation value (None: a row of a v3 ledger, external)

    @property
    def verdict(self) -> Verdict | None:
        """A plan row's verdict (None for a run's row, or a plan row not yet judged)."""
        return Verdict(self.outcome) if self.outcome in _VERDICTS else None

    @property
    def provider_kind(self) -> Provider:
        """The row's provider; rows of earlier releases were all AWS KMS."""
        return Provider(self.provider) if self.provider else Provider.AWS

    @property
    def operation_kind(self) -> Operation:
        """The row's rotation; rows of earlier releases were all rekey-external."""
        return Operation(self.operation) if self.operation else Operation.EXTERNAL


@dataclass(frozen=True)
class Transition:
    """An append-only record of one state change (the audit trail and the timeline)."""

    run_id: str
    key: TargetKey
    at: float  # unix time
    state: TargetState
    attempt: int = 0
    event: str = ""  # the log event name, e.g. "attempt.retry_scheduled"
    detail: dict[str, Any] = field(default_factory=dict)  # job_uuid, error_code, delay_s ...
