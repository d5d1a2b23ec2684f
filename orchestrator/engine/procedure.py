"""The per-target procedure: one loop over the lifecycle table (`core/lifecycle.py`).

    take the slots -> act -> observe -> commit -> decide -> release -> wait

The lifecycle decides everything that matters for safety; this module does the I/O and
turns what it sees into observations. The slots (the cluster's and the run's concurrency)
are taken before a POST and kept until the lifecycle says nothing of ours runs any more
(`Decision.hold`): a target waiting to settle an uncertain POST keeps its slot, because its
job may be running. A waiting retry (`Wait.BACKOFF`) holds none, and neither does the
read-back of an attempt whose job was seen ending in success (`Evidence.succeeded`: the
job is terminal, nothing of ours runs): it waits in the cluster's read-back batcher, and
its VERIFYING row (queued before the slots go back, committed no later than any intent
queued after it) forbids any new POST.

Every change of state or evidence is committed to the ledger before the next request:
the intent before the POST, the job uuid and the evidence as soon as they are known, so a
crash at any point is settled the same way by `resume`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import anyio
import anyio.lowlevel

from orchestrator.core.backoff import (
    WAITS,
    Purpose,
    next_delay,
    try_spend_all,
    wait_until,
)
from orchestrator.core.errors import ErrorClass, ErrorKind, OntapError
from orchestrator.core.lifecycle import (
    IN_FLIGHT,
    NO_EVIDENCE,
    Action,
    Decision,
    Event,
    Evidence,
    Observation,
    Reason,
    Wait,
    decide,
    job_failure_event,
    post_error_event,
    read_error_event,
)
from orchestrator.core.policy import RetryRule, classify
from orchestrator.core.providers import rekey_body
from orchestrator.core.settling import Calibration, CalibrationKind
from orchestrator.core.targets import AbortReason, Outcome, TargetState
from orchestrator.engine.breaker import Admission, BreakerState
from orchestrator.engine.context import ClusterContext, RunContext
from orchestrator.engine.discovery import row_intended_key
from orchestrator.engine.jobs import is_gone, learn_from_known_job
from orchestrator.engine.recorder import TargetRecorder
from orchestrator.engine.settle import remember_job, settle
from orchestrator.engine.verify import ReadBack, read_back
from orchestrator.ledger.records import TargetRow
from orchestrator.observe import events
from orchestrator.observe.logging import EventLogger
from orchestrator.ontap.client import job_error
from orchestrator.ontap.models import ConfigRef, Job

log = EventLogger()  # structlog.get_logger() without its layers per call

# Every wait and its limits: `core/backoff.py::WAITS` (one owner).
_RETRY = WAITS[Purpose.RETRY]
_POLL = WAITS[Purpose.POLL]
_SETTLE = WAITS[Purpose.SETTLE]
_SETTLE_EARLY = WAITS[Purpose.SETTLE_EARLY]
_READ_BACK = WAITS[Purpose.READ_BACK]
_READ_BACK_PENDING = WAITS[Purpose.READ_BACK_PENDING]

_TRANSITION_EVENTS = {
    TargetState.INTENT: events.ATTEMPT_STARTED,
    TargetState.SUBMITTED: events.ATTEMPT_SUBMITTED,
    TargetState.UNCERTAIN: events.ATTEMPT_UNCERTAIN,
    TargetState.WAITING: events.ATTEMPT_RETRY_SCHEDULED,
    TargetState.VERIFYING: events.TARGET_VERIFYING,
    TargetState.DONE: events.TARGET_FINISHED,
}
_BEGIN = Observation(Event.BEGIN)  # (frozen: one for every target)
_SETTLE_EVENTS = frozenset(
    {Event.FOUND_JOB, Event.FOUND_REKEY, Event.FOUND_KEY, Event.NOT_SUBMITTED}
)


class TargetSlots:
    """A target's cluster slot, run slot and breaker admission, held across many steps
    (borrowed on behalf of this object, so any task may release them)."""

    def __init__(self, run: RunContext, cluster: ClusterContext) -> None:
        self._run, self._cluster = run, cluster
        self._admission: Admission | None = None

    @property
    def held(self) -> bool:
        return self._admission is not None

    async def take(self) -> bool:
        """Wait for both slots; False when the cluster is closed for good."""
        breaker = self._cluster.breaker
        await anyio.lowlevel.checkpoint_if_cancelled()  # a cancelled target takes nothing
        while True:
            admission = await breaker.admit()
            if admission is None:
                return False
            try:
                await _acquire(self._cluster.limiter, self)
                try:
                    await _acquire(self._run.limiter, self)
                except BaseException:
                    self._cluster.limiter.release_on_behalf_of(self)
                    raise
            except BaseException:
                breaker.release(admission)
                raise
            if breaker.valid(admission):
                self._admission = admission
                self._cluster.rekey_in_flight(self)
                return True
            self._give_back(admission)  # the circuit opened while this target queued

    def release(self) -> None:
        if self._admission is not None:
            admission, self._admission = self._admission, None
            self._give_back(admission)
            self._cluster.rekey_settled(self)

    def _give_back(self, admission: Admission) -> None:
        self._run.limiter.release_on_behalf_of(self)
        self._cluster.limiter.release_on_behalf_of(self)
        self._cluster.breaker.release(admission)


async def _acquire(limiter: anyio.CapacityLimiter, borrower: object) -> None:
    """A token of `limiter` for `borrower`: at once when one is free and nobody queues
    (anyio's `acquire_on_behalf_of` would also check for a cancel and yield to the loop
    once: two more trips through the loop per limiter, per target), else in line."""
    try:
        limiter.acquire_on_behalf_of_nowait(borrower)
    except anyio.WouldBlock:
        await limiter.acquire_on_behalf_of(borrower)


@dataclass
class _Loop:
    """The moving parts of one target's loop."""

    run: RunContext
    cluster: ClusterContext
    rec: TargetRecorder
    slots: TargetSlots
    on_slots: Callable[[], None] | None = None
    evidence: Evidence = NO_EVIDENCE
    error: OntapError | None = None  # the last error: the outcome's error and the backoff
    rule: RetryRule | None = None
    job: Job | None = None  # a job record the POST answer carried (no GET needed)
    key_id_after: str | None = None
    polls: int = 0
    read_errors: int = 0
    pending_reads: int = 0
    settle_waits: int = 0
    settle_errors: int = 0
    budget_sampled: bool = False  # the failure budget counted the job's success already
    follow_since: float | None = None
    last: Observation = _BEGIN
    # the row's provider and operation, read once (a row's never change; each read of
    # `TargetRow.provider_kind` builds the enum from the stored value)
    kind: CalibrationKind = field(init=False)
    # left in flight by an earlier process (a crash, a cancel): settled first, by `resume`
    inherited: bool = field(init=False)

    def __post_init__(self) -> None:
        self.kind = (self.rec.row.provider_kind, self.rec.row.operation_kind)
        self.inherited = self.rec.row.state in IN_FLIGHT

    @property
    def row_state(self) -> TargetState:
        return self.rec.row.state


async def drive_target(
    run: RunContext,
    cluster: ClusterContext,
    rec: TargetRecorder,
    *,
    on_slots: Callable[[], None] | None = None,
) -> None:
    """Drive one target to a terminal outcome and commit it; never raises but on cancel
    (or a ledger failure, which ends the run `interrupted`).

    `on_slots` is called once, when the target holds its slots (or knows it never will):
    `resume` starts new targets only after every in-flight one has its slots back."""
    loop = _Loop(run, cluster, rec, TargetSlots(run, cluster), on_slots, _evidence_of(rec.row))
    cluster.target_started()
    try:
        await _drive(loop)
    finally:
        loop.slots.release()
        _slots_settled(loop)
        cluster.target_idle()


def _evidence_of(row: TargetRow) -> Evidence:
    """The row's evidence; a recorded job uuid of an attempt in flight is evidence too
    (rows written before the ledger kept evidence, schema v1 and v2)."""
    evidence = Evidence.from_json(row.evidence)
    in_flight = row.state in (TargetState.SUBMITTED, TargetState.VERIFYING)
    if row.job_uuid and in_flight and not evidence.accepted:
        evidence = evidence.accept("job", row.job_uuid)
    return evidence


async def _drive(loop: _Loop) -> None:
    decision = _decide(loop, _BEGIN)
    if decision.action is not Action.POST:
        decision = await _commit(loop, decision)  # e.g. a crash's INTENT is now UNCERTAIN
    while decision.action is not Action.FINISH:
        decision = await _step(loop, decision)
    await _finish(loop, decision)


async def _step(loop: _Loop, decision: Decision) -> Decision:
    """One turn: gate, slots, act, observe, commit, decide, limits, wait."""
    if (gated := _gate(loop)) is not None:
        return gated
    if _reads_back_without_slots(loop, decision):
        if not loop.budget_sampled:  # before the slots go: the next target sees it
            loop.run.job_succeeded()
            loop.budget_sampled = True
        loop.slots.release()
        _slots_settled(loop)
    elif not loop.slots.held:
        taken = await loop.slots.take()
        _slots_settled(loop)
        if not taken:
            return _decide(loop, _closed_observation(loop.cluster))
        if (gated := _gate(loop)) is not None:
            return gated  # the run stopped while this target queued for its slots
    observation = await _act(loop, decision.action)
    loop.last = observation
    decision = await _commit(loop, _limited(loop, _decide(loop, observation)))
    if decision.action is Action.FINISH:
        return decision
    await _wait(loop, decision)
    return decision


def _reads_back_without_slots(loop: _Loop, decision: Decision) -> bool:
    """A read-back after the job was seen ending in success needs no slot: the job is
    terminal, so the limits (which bound running jobs) need not count it."""
    return decision.action is Action.VERIFY and loop.evidence.succeeded


def _slots_settled(loop: _Loop) -> None:
    if loop.on_slots is not None:
        callback, loop.on_slots = loop.on_slots, None
        callback()


def _decide(loop: _Loop, observation: Observation) -> Decision:
    return decide(loop.row_state, loop.evidence, observation)


# -- the gate before a new attempt -----------------------------------------------------------


def _gate(loop: _Loop) -> Decision | None:
    """A terminal decision before a POST: stop, deadline, closed cluster (None: go on).

    In flight, nothing stops the target: something of ours may run on the cluster."""
    if loop.row_state in IN_FLIGHT:
        return None
    run = loop.run
    if run.past_deadline():
        run.stop(AbortReason.DEADLINE)  # no new attempt after it: the run ends `aborted`
    if run.stop_reason is AbortReason.DEADLINE:
        return _decide(loop, Observation(Event.DEADLINE))
    if run.stop_reason is not None:
        return _decide(loop, Observation(Event.STOP, Reason(run.stop_reason.value)))
    if loop.cluster.breaker.blocked:
        return _decide(loop, _closed_observation(loop.cluster))
    return None


def _closed_observation(cluster: ClusterContext) -> Observation:
    if cluster.breaker.state is BreakerState.AUTH_FAILED:
        return Observation(Event.CLUSTER_CLOSED, Reason.AUTH_FAILED)
    return Observation(Event.CLUSTER_CLOSED, Reason.CIRCUIT_OPEN)


# -- acting ----------------------------------------------------------------------------------


async def _act(loop: _Loop, action: Action) -> Observation:
    match action:
        case Action.POST:
            return await _post(loop)
        case Action.FOLLOW:
            return await _follow(loop)
        case Action.SETTLE:
            return await _settle(loop)
        case Action.VERIFY:
            return await _verify(loop)
    raise AssertionError(f"no act for {action}")  # pragma: no cover


async def _post(loop: _Loop) -> Observation:
    """One POST; the intent (and a clean slate of evidence) is committed before it is sent."""
    row, run = loop.rec.row, loop.run
    if row.attempts > 0 and run.on_retry is not None:
        run.on_retry()  # a retry is an attempt after the first: what the reports count
    await loop.rec.move(
        TargetState.INTENT,
        events.ATTEMPT_STARTED,
        attempts=row.attempts + 1,
        intent_at=time.time(),
        job_uuid=None,
        evidence={},
        facts=remember_job(row.facts, row.job_uuid),  # settling must not mistake it for ours
        started_at=row.started_at or time.time(),
        detail={"key_id": row.key_id_intended, "operation": loop.kind[1].value},
    )
    loop.evidence, loop.job, loop.polls, loop.read_errors = NO_EVIDENCE, None, 0, 0
    log.info(events.ATTEMPT_STARTED, attempt=loop.rec.row.attempts, key_id=row.key_id_intended)
    provider, operation = loop.kind
    try:
        answer = await loop.cluster.client.rekey(
            ConfigRef(provider, row.config_uuid or ""),
            operation,
            rekey_body(provider, operation, row_intended_key(row)),
            return_timeout=run.options.return_timeout,
        )
    except OntapError as err:
        return Observation(post_error_event(_note_error(loop, err)))
    loop.cluster.breaker.record_success()
    log.info(events.ATTEMPT_SUBMITTED, job_uuid=answer.job_uuid, status=answer.status)
    if answer.job_uuid is None:  # 200/201 without a job: it finished within return_timeout
        loop.evidence = Evidence(accepted=True, succeeded=True, how="post")
        return Observation(Event.POST_DONE_NO_JOB)
    loop.evidence = NO_EVIDENCE.accept("post", answer.job_uuid)
    loop.job = answer.job
    if answer.job is not None:
        await _learn(loop, answer.job)
        if answer.job.is_terminal:
            _saw_end(loop, answer.job)
        if answer.job.succeeded:
            return Observation(Event.POST_DONE)
    return Observation(Event.POST_JOB)


async def _follow(loop: _Loop) -> Observation:
    """Read the recorded job once (or use the record the POST answer carried)."""
    job_uuid = loop.evidence.job_uuid or loop.rec.row.job_uuid
    if job_uuid is None:
        return Observation(Event.JOB_LOST)
    loop.follow_since = loop.follow_since or time.monotonic()
    job, loop.job = loop.job, None
    if job is None or not job.is_terminal:
        loop.polls += 1
        try:
            job = await loop.cluster.client.get_job(job_uuid)
        except OntapError as err:
            return _follow_error(loop, err)
        loop.cluster.breaker.record_success()
        loop.read_errors = 0
        await _learn(loop, job)
        log.debug(events.JOB_POLLED, job_uuid=job_uuid, state=job.state)
    if not job.is_terminal:
        if time.monotonic() - loop.follow_since > _POLL.within_s:
            return Observation(Event.LIMIT, Reason.OUTCOME_UNKNOWN)
        return Observation(Event.JOB_RUNNING)
    _saw_end(loop, job)
    if job.succeeded:
        return Observation(Event.JOB_SUCCEEDED)
    failure = job_error(loop.cluster.spec.name, job)
    loop.error, loop.rule = failure, _classify(loop, failure)
    return Observation(job_failure_event(loop.rule.error_class))


def _follow_error(loop: _Loop, err: OntapError) -> Observation:
    if is_gone(err):
        loop.cluster.breaker.record_success()  # ONTAP answered: the record expired
        return Observation(Event.JOB_LOST)
    event = read_error_event(_note_error(loop, err))
    if event is Event.READ_RETRYABLE:
        loop.read_errors += 1
        if loop.read_errors >= _POLL.tries:
            return Observation(Event.JOB_LOST)  # then decided by the read-back
    return Observation(event)


async def _settle(loop: _Loop) -> Observation:
    """Search the cluster for the fate of the POST, before anything is sent again."""
    cluster = loop.cluster
    try:
        found = await settle(
            cluster.client,
            loop.rec.row,
            cluster.calibrations.get(_kind(loop)),
            settle_window_s=loop.run.options.settle_window_s,
            ended_seen_at=cluster.ended_seen_at,
        )
    except OntapError as err:
        event = read_error_event(_note_error(loop, err))
        if event is Event.READ_RETRYABLE:
            loop.settle_errors += 1
            if loop.settle_errors >= _SETTLE.tries:
                return Observation(Event.LIMIT, Reason.CANNOT_SETTLE)
        return Observation(event)
    cluster.breaker.record_success()  # the cluster answered: it is reachable
    loop.settle_errors = 0
    await _save_calibration(loop, found.calibration)
    log.info(events.ATTEMPT_SETTLED, how=found.how, result=found.event.value)
    if found.event is Event.TOO_EARLY:
        loop.settle_waits += 1
        if loop.settle_waits > _SETTLE_EARLY.tries:
            return Observation(Event.LIMIT, Reason.CANNOT_SETTLE)
    if found.event is Event.FOUND_JOB:
        loop.evidence = loop.evidence.accept("settle_job", found.job_uuid)
    elif found.event is Event.FOUND_REKEY:
        loop.evidence = loop.evidence.accept("key_store")
    elif found.event is Event.FOUND_KEY:
        loop.evidence = _key_changed(loop.evidence.accept("key_id"))
    return Observation(found.event)


async def _verify(loop: _Loop) -> Observation:
    """One read-back of the configuration and its key store."""
    log.debug(events.TARGET_VERIFYING)
    try:
        result, changed = await _batched_read(loop)
    except OntapError as err:
        event = read_error_event(_note_error(loop, err))
        if event is Event.READ_RETRYABLE:
            loop.read_errors += 1
            if loop.read_errors >= _READ_BACK.tries:
                return Observation(Event.LIMIT, Reason.READ_BACK_FAILED)
        return Observation(event)
    loop.cluster.breaker.record_success()
    loop.read_errors = 0
    loop.key_id_after = result.key_id_after
    if changed and not loop.evidence.key_changed:
        loop.evidence = _key_changed(loop.evidence)
    if result.event is Event.VERIFIED:
        log.info(events.TARGET_VERIFIED, key_id=result.key_id_after)
    if result.event is Event.VERIFY_PENDING:
        loop.pending_reads += 1
        if loop.pending_reads >= _READ_BACK_PENDING.tries:
            return Observation(Event.LIMIT, Reason.READ_BACK_FAILED)
    return Observation(result.event, result.reason)


async def _batched_read(loop: _Loop) -> tuple[ReadBack, bool]:
    """The read-back from the cluster's next batch; meanwhile the target is idle for the
    batcher (the cluster's last running target to wait lets the batch leave)."""
    cluster = loop.cluster
    cluster.target_idle()
    cluster.rekey_settled(loop.slots)  # a batch must not wait for a target waiting in it
    try:
        return await read_back(cluster.batcher, cluster.client, loop.rec.row)
    finally:
        cluster.target_started()
        if loop.slots.held:
            cluster.rekey_in_flight(loop.slots)


def _note_error(loop: _Loop, err: OntapError) -> ErrorClass:
    """Classify an error of any request and tell the breaker, the same for every request:
    a 401 closes the cluster, a transport or TLS failure counts towards opening it."""
    rule = _classify(loop, err)
    loop.error, loop.rule = err, rule
    breaker = loop.cluster.breaker
    if rule.error_class is ErrorClass.AUTH:
        if not breaker.blocked:
            log.warning(events.CLUSTER_AUTH_FAILED, error_code=err.code, operation=err.operation)
        breaker.trip_auth()
    elif err.kind in (ErrorKind.CONNECT, ErrorKind.SENT, ErrorKind.TLS):
        breaker.record_transport_failure()
    else:
        breaker.record_success()  # ONTAP answered, with an error
    return rule.error_class


def _classify(loop: _Loop, err: OntapError) -> RetryRule:
    """The policy's rule for an error of this target: its provider's and operation's."""
    provider, operation = loop.kind
    return classify(err, loop.run.overrides, provider=provider, operation=operation)


def _kind(loop: _Loop) -> CalibrationKind:
    """The endpoint whose jobs this target's POST starts (calibrated apart)."""
    return loop.kind


async def _learn(loop: _Loop, job: Job) -> None:
    """Calibrate the cluster's job descriptions from a job our POST's answer named."""
    row = loop.rec.row
    before = loop.cluster.calibrations.get(_kind(loop))
    after = learn_from_known_job(
        loop.cluster.spec.name, before, job, row.config_uuid or "", row.key.svm, _kind(loop)
    )
    await _save_calibration(loop, after)


async def _save_calibration(loop: _Loop, calibration: Calibration | None) -> None:
    if calibration is None:
        return
    previous = loop.cluster.calibrations.get(calibration.kind)
    if calibration is previous or calibration == previous:  # (most POSTs teach nothing new)
        return
    loop.cluster.calibrations[calibration.kind] = calibration
    # A lifetime measurement alone is written only when it grew by a second or more:
    # every settle measures, and the ledger need not hear of every tenth of a second.
    if previous is not None and _only_lifetime_grew_a_little(previous, calibration):
        return
    await loop.run.ledger.save_calibration(calibration, loop.run.run_id)


def _only_lifetime_grew_a_little(old: Calibration, new: Calibration) -> bool:
    same = replace(new, record_lifetime_s=old.record_lifetime_s) == old
    return same and new.record_lifetime_s - old.record_lifetime_s < 1.0


def _saw_end(loop: _Loop, job: Job) -> None:
    """The job ended: evidence of its outcome, and a witness of the record lifetime."""
    now = time.time()
    loop.cluster.saw_ended(job.uuid, now)
    seen = loop.evidence.ended_seen_at or now
    loop.evidence = loop.evidence.ended(succeeded=job.succeeded, seen_at=seen)


def _key_changed(evidence: Evidence) -> Evidence:
    return replace(evidence, key_changed=True)


# -- committing, limits, waiting ---------------------------------------------------------------


async def _commit(loop: _Loop, decision: Decision) -> Decision:
    """Commit the new state and evidence before anything depends on them."""
    if decision.action is Action.FINISH:
        return decision  # committed by _finish, with the outcome
    row = loop.rec.row
    evidence = loop.evidence.to_json()
    if decision.state is row.state and evidence == row.evidence:
        return decision
    event = _TRANSITION_EVENTS[decision.state]
    if loop.last.event in _SETTLE_EVENTS:
        event = events.ATTEMPT_SETTLED
    # A read-back that gives the slots back queues its VERIFYING row and goes on: the
    # slots go back right after, and any POST they let out waits for its own intent,
    # which the ledger commits no earlier than this row (in queue order). So the row is
    # durable before anything it guards is sent, without a commit's wait on the slots.
    move = loop.rec.move_queued if _reads_back_without_slots(loop, decision) else loop.rec.move
    await move(
        decision.state,
        event,
        job_uuid=loop.evidence.job_uuid or row.job_uuid,
        evidence=evidence,
        detail=_detail(loop),
    )
    if decision.state is TargetState.VERIFYING and row.state is not TargetState.VERIFYING:
        log.debug(events.TARGET_VERIFYING)
    if decision.state is TargetState.UNCERTAIN and row.state is not TargetState.UNCERTAIN:
        log.warning(events.ATTEMPT_UNCERTAIN, cause=loop.error.message if loop.error else None)
    return decision


def _detail(loop: _Loop) -> dict[str, object]:
    err = loop.error if loop.last.event.name.startswith(("POST_", "JOB_FAILED", "READ")) else None
    return {
        "observed": loop.last.event.value,
        "job_uuid": loop.evidence.job_uuid,
        "evidence": loop.evidence.how,
        "error_code": err.code if err else None,
        "error_class": loop.rule.error_class.value if err and loop.rule else None,
        "status": err.status if err else None,
        "cause": err.message if err else None,
    }


def _limited(loop: _Loop, decision: Decision) -> Decision:
    """The end of retrying: attempts and retry budgets, before a backoff is waited out."""
    if decision.wait is not Wait.BACKOFF:
        return decision
    rule = loop.rule
    limit = (rule.max_attempts if rule else None) or loop.run.options.max_attempts
    bounded = rule is not None and rule.error_class is ErrorClass.BOUNDED
    if loop.rec.row.attempts >= limit:
        return decide(
            decision.state, loop.evidence, Observation(Event.LIMIT, Reason.ATTEMPTS, bounded)
        )
    if not try_spend_all([loop.cluster.budget, loop.run.budget]):
        return decide(
            decision.state, loop.evidence, Observation(Event.LIMIT, Reason.RETRY_BUDGET, bounded)
        )
    return decision


async def _wait(loop: _Loop, decision: Decision) -> None:
    """Wait before the next action; a backoff gives the slots back first."""
    match decision.wait:
        case Wait.NONE:
            return
        case Wait.BACKOFF:
            loop.slots.release()
            await _backoff(loop)
        case Wait.POLL:
            await anyio.sleep(_poll_pause(loop, decision))
        case Wait.SETTLE:
            await anyio.sleep(_settle_pause(loop))


def _poll_pause(loop: _Loop, decision: Decision) -> float:
    if decision.action is Action.FOLLOW:
        return next_delay(_POLL, loop.polls)
    return next_delay(_READ_BACK, 1)


def _settle_pause(loop: _Loop) -> float:
    """Look again soon (a dropped answer's job is usually there at once); while it is too
    early to tell, every few seconds until the settle window ends."""
    window = loop.run.options.settle_window_s
    if loop.last.event is Event.POST_UNCERTAIN:
        return min(next_delay(_SETTLE, 1), window)
    if loop.last.event is Event.TOO_EARLY:
        remaining = (loop.rec.row.intent_at or 0.0) + window - time.time()
        if remaining > 0:
            return wait_until(_SETTLE_EARLY, remaining)
    return next_delay(_SETTLE, 1)


async def _backoff(loop: _Loop) -> None:
    run = loop.run
    delay = _backoff_delay(loop)
    if run.deadline is not None and anyio.current_time() + delay >= run.deadline:
        delay = max(0.0, run.deadline - anyio.current_time())
    log.info(
        events.ATTEMPT_RETRY_SCHEDULED,
        error_code=loop.error.code if loop.error else None,
        error_class=loop.rule.error_class.value if loop.rule else None,
        delay_s=round(delay, 3),
        cause=loop.error.message if loop.error else loop.last.event.value,
    )
    await run.sleep(delay)  # wakes early when the run stops: then the gate decides


def _backoff_delay(loop: _Loop) -> float:
    run, rule = loop.run, loop.rule
    policy = _RETRY
    if rule is not None and loop.last.event is not Event.NOT_SUBMITTED:
        policy = policy.bounded(rule.base_delay_s, rule.max_delay_s)
    return next_delay(
        policy.scaled(run.options.backoff_scale),
        max(1, loop.rec.row.attempts),
        run.rand.random,
        retry_after=loop.error.retry_after if loop.error else None,
        retry_after_cap_s=run.options.retry_after_cap_s,
    )


# -- the end -----------------------------------------------------------------------------------


async def _finish(loop: _Loop, decision: Decision) -> None:
    """Commit the outcome (before the slots are released: a stop it causes takes effect
    before the next target can start)."""
    outcome = decision.outcome or Outcome.UNVERIFIED
    if not (loop.inherited and decision.reason is Reason.CANNOT_SETTLE):
        # An intent the crash left unprovable says nothing of the fleet: counted, a
        # resume after a kill in clusters' first rounds (their jobs not calibrated yet)
        # tripped the budget on its first targets and aborted the rest.
        loop.run.outcome_decided(outcome, sampled=loop.budget_sampled)
    err, rule = _error_for(loop, outcome)
    await loop.rec.move(
        TargetState.DONE,
        events.TARGET_FINISHED,
        outcome=outcome.value,
        reason=decision.reason.value if decision.reason else None,
        key_id_after=loop.key_id_after,
        finished_at=time.time(),
        job_uuid=loop.evidence.job_uuid or loop.rec.row.job_uuid,
        evidence=loop.evidence.to_json(),
        error_code=err.code if err else None,
        error_message=err.summary() if err else None,
        error_class=rule.error_class.value if rule else None,
        error_hint=rule.hint if rule else None,
        detail={"observed": loop.last.event.value},
    )
    row = loop.rec.row  # (`target.verified` was logged by the read-back that proved it)
    duration = (row.finished_at or 0) - (row.started_at or row.finished_at or 0)
    log.info(
        events.TARGET_FINISHED,
        outcome=row.outcome,
        outcome_reason=row.reason,  # `reason` is the emergency reason, on every line
        attempts=row.attempts,
        duration_s=round(duration, 3),
        error_code=row.error_code,
        error_class=row.error_class,
        hint=row.error_hint,
        job_uuid=row.job_uuid,
        key_id_before=row.key_id_before,
        key_id_after=row.key_id_after,
    )


def _error_for(loop: _Loop, outcome: Outcome) -> tuple[OntapError | None, RetryRule | None]:
    """The error a finished target reports: the last one, unless the target ended well or
    was never tried (a stop, a closed cluster)."""
    if outcome is Outcome.REKEYED or outcome is Outcome.ABORTED:
        return None, None
    if loop.last.event in (Event.BEGIN, Event.STOP, Event.DEADLINE):
        return None, None
    return loop.error, loop.rule
