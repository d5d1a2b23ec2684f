"""A target's lifecycle as one pure state machine: states x observations -> decisions.

The engine (`orchestrator.engine.procedure`) runs one loop per target over this table:
take the slots, act, observe, commit, decide, release, wait. Everything that must hold for
safety is decided here, from values alone, so it can be tested state by state:

- *Sticky evidence*: once the current attempt is known to be accepted (`Evidence.accepted`:
  a job uuid from any answer, a job found by settling, the key store in `svm_kek_rekey`, the
  key id changed to the intended one) no decision leads to a POST again (`decide` refuses;
  the table sends such a target to the read-back instead).
- *Absence proves nothing* unless the settle search could have found the job: only
  `Event.NOT_SUBMITTED` (the engine's settle returns it only with a calibrated search
  inside the measured job-record lifetime) leads back to a POST; `CANNOT_RULE_OUT` ends
  the target `unverified` with `Reason.CANNOT_SETTLE`.
- *Limits bound running jobs*: `Decision.hold` says whether the target keeps its cluster
  and run slots while it waits: it does from its POST until its job is known terminal
  or its POST is proven not submitted.

The table is declared once (`TABLE`); a few cells depend on the evidence or on the
observation's error class and are small guard functions, named in the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from types import MappingProxyType

from orchestrator.core.errors import ErrorClass
from orchestrator.core.targets import Outcome, TargetState

S = TargetState


class Action(StrEnum):
    """What the engine does next for the target."""

    POST = "post"  # commit the intent, then send the rekey
    FOLLOW = "follow"  # read the recorded job
    SETTLE = "settle"  # search the cluster for the fate of a POST without an answer
    VERIFY = "verify"  # read the configuration and its key store back
    FINISH = "finish"  # commit the terminal outcome


class Wait(StrEnum):
    """How the engine waits before the next action."""

    NONE = "none"  # act at once
    POLL = "poll"  # a short pause, slots kept: a job or key store is still busy
    SETTLE = "settle"  # a settle pause, slots kept: the POST may still be queued or running
    BACKOFF = "backoff"  # a retry backoff, slots released: nothing of ours is running


class Event(StrEnum):
    """The kinds of observation the engine feeds the lifecycle."""

    BEGIN = "begin"  # the target is taken up in this process (fresh, waiting or resumed)
    # -- answers to the POST
    POST_JOB = "post_job"  # 200/201/202 naming a job not known to have ended (or a uuid only)
    POST_DONE = "post_done"  # 200/201 with the job, ended in `success`
    POST_DONE_NO_JOB = "post_done_no_job"  # 200/201 without a job (empty body): finished
    POST_RETRYABLE = "post_retryable"  # an error that proves nothing ran: retry later
    POST_BOUNDED = "post_bounded"  # a retryable error with a bounded number of attempts
    POST_UNCERTAIN = "post_uncertain"  # no (readable) answer: the POST may have reached ONTAP
    POST_AUTH = "post_auth"  # 401
    POST_SKIP = "post_skip"  # not configured
    POST_FATAL = "post_fatal"  # a permanent error (TLS, 4xx, unknown code)
    # -- the job
    JOB_RUNNING = "job_running"  # queued, running or paused
    JOB_SUCCEEDED = "job_succeeded"
    JOB_FAILED_RETRYABLE = "job_failed_retryable"  # ended in `failure` with a retryable code
    JOB_FAILED_BOUNDED = "job_failed_bounded"
    JOB_FAILED_SKIP = "job_failed_skip"
    JOB_FAILED_FATAL = "job_failed_fatal"
    JOB_LOST = "job_lost"  # 404 (expired) or unreadable several times in a row
    # -- settling
    FOUND_JOB = "found_job"  # a job of this attempt, found by the search
    FOUND_REKEY = "found_rekey"  # the key store is in `svm_kek_rekey` (9.16.1+)
    FOUND_KEY = "found_key"  # the key id changed to the intended one
    NOT_SUBMITTED = "not_submitted"  # proven: the search could have found the job and did not
    TOO_EARLY = "too_early"  # no trace yet, but the POST may still be queued on the cluster
    CANNOT_RULE_OUT = "cannot_rule_out"  # no trace, and the search could not have found one
    # -- the read-back
    VERIFIED = "verified"  # the intended key id, a healthy configuration, key store active
    VERIFY_PENDING = "verify_pending"  # the key store is still in `svm_kek_rekey`
    VERIFY_MISMATCH = "verify_mismatch"  # the read-back disagrees (`reason` says how)
    # -- a GET (poll, settle, read-back) failed
    READ_RETRYABLE = "read_retryable"  # transient: read again after a pause
    READ_AUTH = "read_auth"  # 401: the cluster is closed for good
    READ_FATAL = "read_fatal"  # TLS or another permanent failure
    # -- the run and the cluster
    STOP = "stop"  # the run stops (interrupt, failure budget, fail-fast, canary); `reason`
    DEADLINE = "deadline"  # no new attempt after the deadline
    CLUSTER_CLOSED = "cluster_closed"  # the breaker closed the cluster; `reason`
    LIMIT = "limit"  # attempts, retry budget or settle/read tries ran out; `reason`


class Reason(StrEnum):
    """Why a target ended as it did (the `reason` of its row and report entry)."""

    # skipped: never attempted
    NOT_CONFIGURED = "not_configured"  # no key manager configuration for the SVM
    UNSUPPORTED_VERSION = "unsupported_version"  # ONTAP older than 9.12
    UNREACHABLE = "unreachable"  # the cluster could not be reached for discovery
    TLS_FAILED = "tls_failed"  # certificate verification or the TLS handshake failed
    AUTH_FAILED = "auth_failed"  # the cluster answered 401: never retried (account lockout)
    CIRCUIT_OPEN = "circuit_open"  # the cluster's circuit breaker opened
    # aborted: not started because the run stopped (`exhausted` when it had been tried)
    FAILURE_BUDGET = "failure_budget"
    FAIL_FAST = "fail_fast"
    DEADLINE = "deadline"
    INTERRUPT = "interrupt"
    CANARY_FAILED = "canary_failed"
    # exhausted / failed after retries
    ATTEMPTS = "attempts"  # the attempts allowed per target (or per error code) ran out
    RETRY_BUDGET = "retry_budget"  # the run's or the cluster's retry budget ran out
    # unverified: the rekey may have happened, nothing may be sent again
    CANNOT_SETTLE = "cannot_settle"  # no trace of the POST, and the search could not rule one out
    OUTCOME_UNKNOWN = "outcome_unknown"  # accepted, but its job was lost before it was seen ending
    READ_BACK_FAILED = "read_back_failed"  # the configuration could not be read back
    KEY_ID_MISMATCH = "key_id_mismatch"  # the read-back shows another key id
    CONFIG_UNHEALTHY = "config_unhealthy"  # the configuration reports an unhealthy state
    KEY_STORE_NOT_ACTIVE = "key_store_not_active"  # the key store is not back to `active`
    AUTH_FAILED_WHILE_SETTLING = "auth_failed_while_settling"  # 401 after the POST was sent
    CLUSTER_UNREACHABLE_WHILE_SETTLING = "cluster_unreachable_while_settling"  # circuit open
    READ_FAILED = "read_failed"  # a permanent failure (TLS, 4xx) reading the job or state


@dataclass(frozen=True)
class Evidence:
    """What is known of the current attempt; persisted with the row, never forgotten.

    `accepted` is sticky: set by any proof that ONTAP took the POST, it is cleared only
    by a new attempt, and a new attempt is decided only when nothing was accepted.
    """

    accepted: bool = False
    failed: bool = False  # the accepted job was seen ending in `failure`: nothing took effect
    job_uuid: str | None = None
    succeeded: bool = False  # the job was seen ending in `success` (or a 200/201 finished)
    key_changed: bool = False  # the key id changed to the intended one
    how: str | None = None  # the first proof: post | job | settle_job | key_store | key_id
    ended_seen_at: float | None = None  # local time the job was first seen ended (a witness)

    @property
    def blocks_post(self) -> bool:
        """Accepted and not known to have failed: a POST now could rekey a second time."""
        return self.accepted and not self.failed

    @property
    def proves_success(self) -> bool:
        """Enough for `rekeyed` once the read-back confirms health."""
        return self.succeeded or self.key_changed

    def accept(self, how: str, job_uuid: str | None = None) -> Evidence:
        """This evidence with the attempt accepted (the first proof is kept as `how`)."""
        # Built field by field, as `replace` would, without its walk over the fields (a
        # few times per target); tests/test_lifecycle.py holds the two equal.
        return Evidence(
            True, self.failed, job_uuid or self.job_uuid, self.succeeded, self.key_changed,
            self.how or how, self.ended_seen_at,
        )  # fmt: skip

    def ended(self, *, succeeded: bool, seen_at: float) -> Evidence:
        """This evidence with the job seen ending (`succeeded` or failed) at `seen_at`."""
        return Evidence(
            self.accepted, self.failed or not succeeded, self.job_uuid,
            self.succeeded or succeeded, self.key_changed, self.how, seen_at,
        )  # fmt: skip

    def to_json(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "failed": self.failed,
            "job_uuid": self.job_uuid,
            "succeeded": self.succeeded,
            "key_changed": self.key_changed,
            "how": self.how,
            "ended_seen_at": self.ended_seen_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object] | None) -> Evidence:
        if not data:
            return NO_EVIDENCE if cls is Evidence else cls()
        job_uuid, how, seen = data.get("job_uuid"), data.get("how"), data.get("ended_seen_at")
        return cls(
            accepted=bool(data.get("accepted")),
            failed=bool(data.get("failed")),
            job_uuid=job_uuid if isinstance(job_uuid, str) else None,
            succeeded=bool(data.get("succeeded")),
            key_changed=bool(data.get("key_changed")),
            how=how if isinstance(how, str) else None,
            ended_seen_at=float(seen) if isinstance(seen, int | float) else None,
        )


NO_EVIDENCE = Evidence()
"""Nothing known yet (frozen: one instance serves every target)."""


@dataclass(frozen=True)
class Observation:
    """One thing the engine saw. `reason` for STOP, CLUSTER_CLOSED, LIMIT, VERIFY_MISMATCH;
    `bounded` for LIMIT: the last error was of a bounded class (then `failed`)."""

    event: Event
    reason: Reason | None = None
    bounded: bool = False


@dataclass(frozen=True)
class Decision:
    """The next state, the action, how to wait first, and for FINISH the outcome."""

    state: TargetState
    action: Action
    wait: Wait = Wait.NONE
    outcome: Outcome | None = None
    reason: Reason | None = None

    @property
    def hold(self) -> bool:
        """Keep the cluster and run slots while waiting: something of ours may be running."""
        return self.wait in (Wait.POLL, Wait.SETTLE) or (
            self.wait is Wait.NONE and self.action in (Action.FOLLOW, Action.SETTLE)
        )


class IllegalTransition(ValueError):
    """An observation the lifecycle has no transition for (an engine bug)."""


@cache  # one frozen Decision per outcome and reason (one per finished target otherwise)
def _done(outcome: Outcome, reason: Reason | None = None) -> Decision:
    return Decision(S.DONE, Action.FINISH, outcome=outcome, reason=reason)


def _unverified(reason: Reason) -> Decision:
    return _done(Outcome.UNVERIFIED, reason)


_POST = Decision(S.INTENT, Action.POST)
_FOLLOW = Decision(S.SUBMITTED, Action.FOLLOW)
_POLL_JOB = Decision(S.SUBMITTED, Action.FOLLOW, Wait.POLL)
_SETTLE = Decision(S.UNCERTAIN, Action.SETTLE)
_SETTLE_LATER = Decision(S.UNCERTAIN, Action.SETTLE, Wait.SETTLE)
_VERIFY = Decision(S.VERIFYING, Action.VERIFY)
_VERIFY_LATER = Decision(S.VERIFYING, Action.VERIFY, Wait.POLL)
_BACKOFF = Decision(S.WAITING, Action.POST, Wait.BACKOFF)

Guard = Callable[[Evidence, Observation], Decision]
Cell = Decision | Guard


def _stopped(_: Evidence, obs: Observation) -> Decision:
    """Not started when the run stopped: `aborted` with the stop's reason."""
    return _done(Outcome.ABORTED, obs.reason or Reason.INTERRUPT)


def _closed_pending(_: Evidence, obs: Observation) -> Decision:
    return _done(Outcome.SKIPPED, obs.reason or Reason.CIRCUIT_OPEN)


def _closed_waiting(_: Evidence, obs: Observation) -> Decision:
    """Tried before: `exhausted` by an open circuit; a 401 skips the cluster's targets."""
    if obs.reason is Reason.AUTH_FAILED:
        return _done(Outcome.SKIPPED, Reason.AUTH_FAILED)
    return _done(Outcome.EXHAUSTED, obs.reason or Reason.CIRCUIT_OPEN)


def _limit_waiting(_: Evidence, obs: Observation) -> Decision:
    outcome = Outcome.FAILED if obs.bounded else Outcome.EXHAUSTED
    return _done(outcome, obs.reason or Reason.ATTEMPTS)


def _limit_in_flight(evidence: Evidence, obs: Observation) -> Decision:
    """Out of tries while something may run: never re-send; unverified with the reason."""
    if obs.reason is not None and obs.reason not in (Reason.ATTEMPTS, Reason.RETRY_BUDGET):
        return _unverified(obs.reason)
    return _unverified(Reason.CANNOT_SETTLE if not evidence.accepted else Reason.READ_BACK_FAILED)


def _verified(evidence: Evidence, _: Observation) -> Decision:
    """Healthy with the intended key id: `rekeyed` only with proof the rekey succeeded."""
    if evidence.proves_success:
        return _done(Outcome.REKEYED)
    return _unverified(Reason.OUTCOME_UNKNOWN)


def _mismatch(_: Evidence, obs: Observation) -> Decision:
    return _unverified(obs.reason or Reason.KEY_ID_MISMATCH)


def _not_submitted(evidence: Evidence, _: Observation) -> Decision:
    """Proven never submitted: retry the POST, unless the attempt was accepted after all."""
    return _VERIFY if evidence.blocks_post else _BACKOFF


def _closed_in_flight(_: Evidence, obs: Observation) -> Decision:
    if obs.reason is Reason.AUTH_FAILED:
        return _unverified(Reason.AUTH_FAILED_WHILE_SETTLING)
    return _unverified(Reason.CLUSTER_UNREACHABLE_WHILE_SETTLING)


def _stay(state: TargetState, action: Action) -> Decision:
    """In flight when the run stops: it finishes (something of ours may be running)."""
    return Decision(state, action)


_NOT_STARTED: dict[Event, Cell] = {
    Event.BEGIN: _POST,
    Event.STOP: _stopped,
    Event.DEADLINE: _done(Outcome.ABORTED, Reason.DEADLINE),
    Event.CLUSTER_CLOSED: _closed_pending,
}

_WAITING: dict[Event, Cell] = {
    Event.BEGIN: _POST,
    Event.STOP: _stopped,  # nothing of ours runs: resume starts it again
    Event.DEADLINE: _done(Outcome.EXHAUSTED, Reason.DEADLINE),
    Event.CLUSTER_CLOSED: _closed_waiting,
    Event.LIMIT: _limit_waiting,
}

_POST_ANSWERS: dict[Event, Cell] = {
    Event.POST_JOB: _FOLLOW,
    Event.POST_DONE: _VERIFY,
    Event.POST_DONE_NO_JOB: _VERIFY,
    Event.POST_RETRYABLE: _BACKOFF,
    Event.POST_BOUNDED: _BACKOFF,
    # Settle after a pause, not at once: a POST the client gave up on may still be queued
    # on the cluster and take effect a moment later.
    Event.POST_UNCERTAIN: _SETTLE_LATER,
    Event.POST_AUTH: _done(Outcome.SKIPPED, Reason.AUTH_FAILED),
    Event.POST_SKIP: _done(Outcome.SKIPPED, Reason.NOT_CONFIGURED),
    Event.POST_FATAL: _done(Outcome.FAILED),
}

_IN_FLIGHT_COMMON: dict[Event, Cell] = {
    Event.READ_AUTH: _unverified(Reason.AUTH_FAILED_WHILE_SETTLING),
    Event.CLUSTER_CLOSED: _closed_in_flight,
    Event.LIMIT: _limit_in_flight,
}

_JOB_ENDS: dict[Event, Cell] = {
    Event.JOB_RUNNING: _POLL_JOB,
    Event.JOB_SUCCEEDED: _VERIFY,
    # A failed job ran and ended: nothing of ours is running, a retry is a new attempt.
    Event.JOB_FAILED_RETRYABLE: _BACKOFF,
    Event.JOB_FAILED_BOUNDED: _BACKOFF,
    Event.JOB_FAILED_SKIP: _done(Outcome.SKIPPED, Reason.NOT_CONFIGURED),
    Event.JOB_FAILED_FATAL: _done(Outcome.FAILED),
    Event.JOB_LOST: _VERIFY,  # decided by the read-back: sticky evidence forbids a re-send
}

TABLE: Mapping[TargetState, Mapping[Event, Cell]] = MappingProxyType(
    {
        S.PENDING: MappingProxyType(_NOT_STARTED),
        S.WAITING: MappingProxyType(_WAITING),
        # INTENT: committed before the POST; the POST's answer (or its absence) decides.
        S.INTENT: MappingProxyType(
            {
                **_POST_ANSWERS,
                Event.BEGIN: _SETTLE,  # a crash left the intent: settle before anything
                Event.STOP: _stay(S.INTENT, Action.SETTLE),
                Event.DEADLINE: _stay(S.INTENT, Action.SETTLE),
                **_IN_FLIGHT_COMMON,
            }
        ),
        S.SUBMITTED: MappingProxyType(
            {
                Event.BEGIN: _FOLLOW,
                **_JOB_ENDS,
                Event.READ_RETRYABLE: _POLL_JOB,
                Event.READ_FATAL: _unverified(Reason.READ_FAILED),
                Event.STOP: _stay(S.SUBMITTED, Action.FOLLOW),
                Event.DEADLINE: _stay(S.SUBMITTED, Action.FOLLOW),
                **_IN_FLIGHT_COMMON,
            }
        ),
        S.UNCERTAIN: MappingProxyType(
            {
                Event.BEGIN: _SETTLE,
                Event.FOUND_JOB: _FOLLOW,
                Event.FOUND_REKEY: _VERIFY_LATER,
                Event.FOUND_KEY: _VERIFY,
                Event.NOT_SUBMITTED: _not_submitted,
                Event.TOO_EARLY: _SETTLE_LATER,
                Event.CANNOT_RULE_OUT: _unverified(Reason.CANNOT_SETTLE),
                Event.READ_RETRYABLE: _SETTLE_LATER,
                Event.READ_FATAL: _unverified(Reason.CANNOT_SETTLE),
                Event.STOP: _stay(S.UNCERTAIN, Action.SETTLE),
                Event.DEADLINE: _stay(S.UNCERTAIN, Action.SETTLE),
                **_IN_FLIGHT_COMMON,
            }
        ),
        S.VERIFYING: MappingProxyType(
            {
                Event.BEGIN: _VERIFY,
                Event.VERIFIED: _verified,
                Event.VERIFY_PENDING: _VERIFY_LATER,
                Event.VERIFY_MISMATCH: _mismatch,
                Event.READ_RETRYABLE: _VERIFY_LATER,
                Event.READ_FATAL: _unverified(Reason.READ_BACK_FAILED),
                Event.STOP: _stay(S.VERIFYING, Action.VERIFY),
                Event.DEADLINE: _stay(S.VERIFYING, Action.VERIFY),
                **_IN_FLIGHT_COMMON,
            }
        ),
        S.DONE: MappingProxyType({}),
    }
)
"""Every legal (state, event) pair; any other pair is an `IllegalTransition`."""

IN_FLIGHT = frozenset({S.INTENT, S.SUBMITTED, S.UNCERTAIN, S.VERIFYING})
"""States in which something of ours may be running on the cluster: resume takes their
slots first, and a stop lets them finish."""

_TO_POST = frozenset({Action.POST})


def decide(state: TargetState, evidence: Evidence, obs: Observation) -> Decision:
    """The decision for `obs` in `state`; raises IllegalTransition for a pair not in TABLE.

    Sticky evidence is enforced here as well as in the table: a decision to POST while
    the current attempt is known accepted is turned into a read-back.
    """
    cell = TABLE[state].get(obs.event)
    if cell is None:
        raise IllegalTransition(f"no transition from {state.value} on {obs.event.value}")
    decision = cell if isinstance(cell, Decision) else cell(evidence, obs)
    if evidence.blocks_post and decision.action in _TO_POST:
        return _VERIFY
    return decision


def post_error_event(error_class: ErrorClass) -> Event:
    """The POST event of an error class (as `orchestrator.core.policy.classify` gives it)."""
    return _POST_ERROR_EVENTS[error_class]


def job_failure_event(error_class: ErrorClass) -> Event:
    """The event of a job that ended in `failure` with a code of this class."""
    return _JOB_FAILURE_EVENTS[error_class]


def read_error_event(error_class: ErrorClass) -> Event:
    """The event of a failed GET (poll, settle, read-back) of this class."""
    if error_class is ErrorClass.AUTH:
        return Event.READ_AUTH
    if error_class in (ErrorClass.RETRYABLE, ErrorClass.BOUNDED, ErrorClass.UNCERTAIN):
        return Event.READ_RETRYABLE
    return Event.READ_FATAL


_POST_ERROR_EVENTS: Mapping[ErrorClass, Event] = MappingProxyType(
    {
        ErrorClass.RETRYABLE: Event.POST_RETRYABLE,
        ErrorClass.BOUNDED: Event.POST_BOUNDED,
        ErrorClass.UNCERTAIN: Event.POST_UNCERTAIN,
        ErrorClass.AUTH: Event.POST_AUTH,
        ErrorClass.SKIP: Event.POST_SKIP,
        ErrorClass.FATAL: Event.POST_FATAL,
    }
)
_JOB_FAILURE_EVENTS: Mapping[ErrorClass, Event] = MappingProxyType(
    {
        ErrorClass.RETRYABLE: Event.JOB_FAILED_RETRYABLE,
        ErrorClass.BOUNDED: Event.JOB_FAILED_BOUNDED,
        # an uncertain or auth class cannot come from a job's code; fail safe: permanent
        ErrorClass.UNCERTAIN: Event.JOB_FAILED_FATAL,
        ErrorClass.AUTH: Event.JOB_FAILED_FATAL,
        ErrorClass.SKIP: Event.JOB_FAILED_SKIP,
        ErrorClass.FATAL: Event.JOB_FAILED_FATAL,
    }
)
