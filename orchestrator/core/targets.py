"""Targets, their lifecycle states and their terminal outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CLUSTER_SCOPE = "-"
"""The `svm` part of the key of a cluster-scoped (admin SVM) AWS KMS configuration."""


@dataclass(frozen=True, order=True)
class TargetKey:
    """One AWS KMS configuration: `cluster/svm` (`cluster/-` for the cluster scope)."""

    cluster: str
    svm: str

    def __str__(self) -> str:
        return f"{self.cluster}/{self.svm}"

    @classmethod
    def parse(cls, text: str) -> TargetKey:
        """Parse `cluster/svm`; raises ValueError on anything else."""
        cluster, sep, svm = text.strip().partition("/")
        if not sep or not cluster or not svm or "/" in svm:
            raise ValueError(f"expected 'cluster/svm', got {text!r}")
        return cls(cluster, svm)


class Outcome(StrEnum):
    """The one terminal outcome of a target in a run."""

    REKEYED = "rekeyed"  # job succeeded and the read-back confirmed the intended key id
    UNVERIFIED = "unverified"  # job succeeded (or cannot be settled) but read-back did not confirm
    FAILED = "failed"  # a permanent error
    EXHAUSTED = "exhausted"  # retryable errors until attempts, budget or deadline ran out
    SKIPPED = "skipped"  # not attempted, see SkipReason
    ABORTED = "aborted"  # not started because the run stopped, see AbortReason


class Verdict(StrEnum):
    """A plan's verdict on a target, in place of a run's Outcome (never one of its values);
    the cause of `not_ready` is a `core.readiness.NotReady`."""

    READY = "ready"  # the target would be rekeyed now
    NOT_READY = "not_ready"  # it would not, for the reason recorded with it


class SkipReason(StrEnum):
    """Why a target was not attempted."""

    NOT_CONFIGURED = "not_configured"  # no AWS KMS configuration for the SVM
    UNSUPPORTED_VERSION = "unsupported_version"  # ONTAP older than 9.12
    UNREACHABLE = "unreachable"  # the cluster could not be reached for discovery
    TLS_FAILED = "tls_failed"  # certificate verification or the TLS handshake failed
    AUTH_FAILED = "auth_failed"  # the cluster answered 401: never retried (account lockout)
    CIRCUIT_OPEN = "circuit_open"  # the cluster's circuit breaker opened
    NOT_READY = "not_ready"  # `--skip-not-ready`: the plan's verdict; the cause in the facts
    IDENTITY_MISMATCH = "identity_mismatch"  # another cluster answers (uuid: or the ledger)


class AbortReason(StrEnum):
    """Why the run stopped before a target started."""

    FAILURE_BUDGET = "failure_budget"
    FAIL_FAST = "fail_fast"
    DEADLINE = "deadline"
    INTERRUPT = "interrupt"
    CANARY_FAILED = "canary_failed"


class TargetState(StrEnum):
    """A target's place in its lifecycle; the ledger records every transition.

    The order of the write-ahead discipline: INTENT is committed before the POST is sent,
    SUBMITTED (with the job uuid) the moment the answer names a job, DONE with the outcome.
    """

    PENDING = "pending"  # discovered, not started
    INTENT = "intent"  # about to POST (committed first): fate unknown if we crash here
    SUBMITTED = "submitted"  # ONTAP accepted the rekey; job uuid recorded when there is one
    UNCERTAIN = "uncertain"  # the POST may have reached ONTAP; settle before any re-send
    WAITING = "waiting"  # a retryable error; waiting for the next attempt
    VERIFYING = "verifying"  # job done, reading the configuration back
    DONE = "done"  # terminal: the outcome is set

    @property
    def is_terminal(self) -> bool:
        return self is TargetState.DONE


@dataclass(frozen=True)
class ErrorInfo:
    """The error part of a finished target, as logs, ledger and reports show it."""

    code: str | None
    message: str
    error_class: str
    hint: str
