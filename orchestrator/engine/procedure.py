"""The per-target procedure: POST, follow the job, verify, retry, settle.

Each step returns a `Finish` (a terminal outcome) or a `Retry` (wait, then loop). The loop
in `drive_target` owns the waiting, the budgets, the deadline and the stop checks; the
steps hold the cluster's and the run's concurrency slots, the waits do not.

A POST whose fate is unknown is never sent again before it is settled (`settle.py`): the
row stays INTENT or UNCERTAIN in the ledger until a job, the key store or the key id proves
what happened, so a crash at any point is settled the same way by `resume`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
import structlog

from orchestrator.core.backoff import full_jitter, retry_after_delay, try_spend_all
from orchestrator.core.errors import ErrorClass, ErrorKind, OntapError
from orchestrator.core.policy import RetryRule, classify
from orchestrator.core.targets import AbortReason, Outcome, SkipReason, TargetState
from orchestrator.engine.breaker import BreakerState
from orchestrator.engine.context import ClusterContext, RunContext
from orchestrator.engine.jobs import follow_job
from orchestrator.engine.recorder import TargetRecorder
from orchestrator.engine.settle import Settlement, remember_job, settle
from orchestrator.engine.verify import verify
from orchestrator.observe import events
from orchestrator.ontap.client import job_error
from orchestrator.ontap.models import Job

log = structlog.get_logger()

SETTLE_RETRY_S = 2.0  # between attempts to settle an uncertain submission
MAX_SETTLE_TRIES = 8  # then `unverified`: never guess, never re-send


@dataclass(frozen=True)
class Finish:
    outcome: Outcome
    reason: str | None = None
    error: OntapError | None = None
    rule: RetryRule | None = None
    key_id_after: str | None = None


@dataclass(frozen=True)
class Retry:
    error: OntapError
    rule: RetryRule
    settling: bool = False  # the row is UNCERTAIN: the next step settles, it does not POST
    counted: bool = True  # False: waiting out the settle window is not a failed settle


Step = Finish | Retry
IN_FLIGHT = (
    TargetState.INTENT,
    TargetState.UNCERTAIN,
    TargetState.SUBMITTED,
    TargetState.VERIFYING,
)


async def drive_target(run: RunContext, cluster: ClusterContext, rec: TargetRecorder) -> None:
    """Drive one target to a terminal outcome and commit it; never raises but on cancel."""
    settle_tries = 0
    while True:
        if (early := _early_finish(run, cluster, rec)) is not None:
            await _finish(run, rec, early)
            return
        step = await _one_step(run, cluster, rec)
        if isinstance(step, Finish):
            await _finish(run, rec, step, decided=True)
            return
        settle_tries = settle_tries + 1 if step.settling and step.counted else 0
        if (stop := _retry_limit(run, cluster, rec, step, settle_tries)) is not None:
            await _finish(run, rec, stop)
            return
        await _wait_for_retry(run, rec, step)


def _early_finish(run: RunContext, cluster: ClusterContext, rec: TargetRecorder) -> Finish | None:
    """A terminal outcome decided before any request: stop, deadline, closed cluster."""
    if rec.row.state in IN_FLIGHT:
        return None  # something may be running on the cluster: settle it, whatever happens
    if run.past_deadline():
        run.stop(AbortReason.DEADLINE)  # no new attempt after it: the run ends `aborted`
    if run.stop_reason is not None:
        return _stopped(run.stop_reason, rec)
    if cluster.breaker.state is BreakerState.AUTH_FAILED:
        return Finish(Outcome.SKIPPED, SkipReason.AUTH_FAILED)
    if cluster.breaker.state is BreakerState.DEAD:
        return _circuit_open(rec)
    return None


def _circuit_open(rec: TargetRecorder) -> Finish:
    """`skipped` means never attempted; a target whose retries the open circuit cut short
    is `exhausted`."""
    if rec.row.attempts > 0:
        return Finish(Outcome.EXHAUSTED, SkipReason.CIRCUIT_OPEN)
    return Finish(Outcome.SKIPPED, SkipReason.CIRCUIT_OPEN)


def _stopped(reason: AbortReason, rec: TargetRecorder) -> Finish:
    """Not started: `aborted`. Waiting for a retry at the deadline: `exhausted`."""
    if reason is AbortReason.DEADLINE and rec.row.attempts > 0:
        return Finish(Outcome.EXHAUSTED, "deadline")
    return Finish(Outcome.ABORTED, reason.value)


async def _one_step(run: RunContext, cluster: ClusterContext, rec: TargetRecorder) -> Step:
    while True:
        admission = await cluster.breaker.admit()
        if admission is None:
            return _closed_cluster(cluster, rec)
        try:
            async with cluster.limiter, run.limiter:
                if not cluster.breaker.valid(admission):
                    continue  # the circuit opened while this target queued for a slot
                step = await _step_in_slot(run, cluster, rec)
                if isinstance(step, Finish):
                    run.outcome_decided(step.outcome)
                return step
        finally:
            cluster.breaker.release(admission)


async def _step_in_slot(run: RunContext, cluster: ClusterContext, rec: TargetRecorder) -> Step:
    if (late := _early_finish(run, cluster, rec)) is not None:
        return late  # the run stopped while this target queued for a slot
    if rec.row.state in (TargetState.INTENT, TargetState.UNCERTAIN):
        return await _settle_step(run, cluster, rec)
    if rec.row.state in (TargetState.SUBMITTED, TargetState.VERIFYING):
        return await _follow_step(run, cluster, rec, job=None)
    return await _attempt_step(run, cluster, rec)


def _closed_cluster(cluster: ClusterContext, rec: TargetRecorder) -> Finish:
    if rec.row.state in IN_FLIGHT:
        return Finish(Outcome.UNVERIFIED, "cluster_unreachable_while_settling")
    if cluster.breaker.state is BreakerState.AUTH_FAILED:
        return Finish(Outcome.SKIPPED, SkipReason.AUTH_FAILED)
    return _circuit_open(rec)


async def _attempt_step(run: RunContext, cluster: ClusterContext, rec: TargetRecorder) -> Step:
    """One POST. The intent is committed before it is sent."""
    row = rec.row
    if row.attempts > 0 and run.on_retry is not None:
        run.on_retry()  # a retry is an attempt after the first: what the reports count
    await rec.move(
        TargetState.INTENT,
        events.ATTEMPT_STARTED,
        attempts=row.attempts + 1,
        intent_at=time.time(),
        job_uuid=None,
        facts=remember_job(row.facts, row.job_uuid),  # settling must not mistake it for ours
        started_at=row.started_at or time.time(),
        detail={"key_id": row.key_id_intended},
    )
    log.info(events.ATTEMPT_STARTED, attempt=rec.row.attempts, key_id=row.key_id_intended)
    try:
        submission = await cluster.client.rekey_external(
            row.config_uuid or "",
            row.key_id_intended or "",
            return_timeout=run.options.return_timeout,
        )
    except OntapError as err:
        _note_transport(cluster, err)
        return await _on_error(run, cluster, rec, err)
    cluster.breaker.record_success()
    await rec.move(
        TargetState.SUBMITTED,
        events.ATTEMPT_SUBMITTED,
        job_uuid=submission.job_uuid,
        detail={"job_uuid": submission.job_uuid, "status": submission.status},
    )
    log.info(events.ATTEMPT_SUBMITTED, job_uuid=submission.job_uuid, status=submission.status)
    return await _follow_step(run, cluster, rec, job=submission.job)


async def _follow_step(
    run: RunContext, cluster: ClusterContext, rec: TargetRecorder, job: Job | None
) -> Step:
    """Follow the recorded job to its end, then verify; a lost job is settled from state."""
    if rec.row.job_uuid is not None and (job is None or not job.is_terminal):
        outcome = await follow_job(cluster.client, rec.row.job_uuid)
        if outcome is None:  # expired (404) or unreadable: settle from cluster state
            await rec.move(
                TargetState.UNCERTAIN, events.ATTEMPT_UNCERTAIN, detail={"cause": "job_lost"}
            )
            return await _settle_step(run, cluster, rec)
        job = outcome
    if job is not None and not job.succeeded:
        return await _on_error(run, cluster, rec, job_error(cluster.spec.name, job))
    return await _verify_step(cluster, rec)


async def _verify_step(cluster: ClusterContext, rec: TargetRecorder) -> Finish:
    await rec.move(TargetState.VERIFYING, events.TARGET_VERIFYING)
    log.debug(events.TARGET_VERIFYING)
    result = await verify(cluster.client, rec.row)
    if result.outcome is Outcome.REKEYED:
        log.info(events.TARGET_VERIFIED, key_id=result.key_id_after)
    return Finish(result.outcome, result.reason, result.error, key_id_after=result.key_id_after)


async def _settle_step(run: RunContext, cluster: ClusterContext, rec: TargetRecorder) -> Step:
    """Find out whether an uncertain POST took effect, before anything is sent again."""
    try:
        settlement = await settle(cluster.client, rec.row)
    except OntapError as err:
        _note_transport(cluster, err)
        if classify(err, run.overrides).error_class is ErrorClass.AUTH:
            cluster.breaker.trip_auth()
            return Finish(Outcome.UNVERIFIED, "auth_failed_while_settling", err)
        return Retry(err, classify(err, run.overrides), settling=True)
    cluster.breaker.record_success()  # the cluster answered: it is reachable
    log.info(events.ATTEMPT_SETTLED, how=settlement.how, result=settlement.kind)
    return await _after_settlement(run, cluster, rec, settlement)


async def _after_settlement(
    run: RunContext, cluster: ClusterContext, rec: TargetRecorder, settlement: Settlement
) -> Step:
    detail = {"how": settlement.how, "result": settlement.kind}
    if settlement.kind == "submitted" and settlement.job is not None:
        await rec.move(
            TargetState.SUBMITTED,
            events.ATTEMPT_SETTLED,
            job_uuid=settlement.job.uuid,
            detail=detail,
        )
        return await _follow_step(run, cluster, rec, job=settlement.job)
    if settlement.kind == "took_effect":
        await rec.move(TargetState.SUBMITTED, events.ATTEMPT_SETTLED, detail=detail)
        return await _verify_step(cluster, rec)
    if settlement.kind == "in_progress":
        message = "a rekey is in progress on the key store"
        return _retry(run, cluster, ErrorKind.SENT, message, settling=True)
    if settlement.kind == "not_submitted":
        if _inside_settle_window(run, rec):  # it may still be queued: look again later
            message = "no trace of the POST yet; waiting out the settle window"
            return _retry(run, cluster, ErrorKind.SENT, message, settling=True, counted=False)
        await rec.move(TargetState.WAITING, events.ATTEMPT_SETTLED, detail=detail)
        return _retry(run, cluster, ErrorKind.CONNECT, "the POST never reached ONTAP")
    return Finish(Outcome.UNVERIFIED, "cannot_settle")


def _inside_settle_window(run: RunContext, rec: TargetRecorder) -> bool:
    intent_at = rec.row.intent_at or 0.0
    return time.time() - intent_at < run.options.settle_window_s


def _retry(
    run: RunContext,
    cluster: ClusterContext,
    kind: ErrorKind,
    message: str,
    *,
    settling: bool = False,
    counted: bool = True,
) -> Retry:
    """A Retry for a condition the engine found itself, classified like any ONTAP error."""
    operation = "settle" if settling else "rekey-external"
    err = OntapError(cluster=cluster.spec.name, operation=operation, kind=kind, message=message)
    return Retry(err, classify(err, run.overrides), settling=settling, counted=counted)


async def _on_error(
    run: RunContext, cluster: ClusterContext, rec: TargetRecorder, err: OntapError
) -> Step:
    rule = classify(err, run.overrides)
    match rule.error_class:
        case ErrorClass.AUTH:
            cluster.breaker.trip_auth()
            log.warning(events.CLUSTER_AUTH_FAILED, error_code=err.code)
            return Finish(Outcome.SKIPPED, SkipReason.AUTH_FAILED, err, rule)
        case ErrorClass.SKIP:
            return Finish(Outcome.SKIPPED, SkipReason.NOT_CONFIGURED, err, rule)
        case ErrorClass.FATAL:
            return Finish(Outcome.FAILED, None, err, rule)
        case ErrorClass.UNCERTAIN:
            await rec.move(
                TargetState.UNCERTAIN,
                events.ATTEMPT_UNCERTAIN,
                detail={"cause": err.message, "error_code": err.code},
            )
            log.warning(events.ATTEMPT_UNCERTAIN, cause=err.message)
            # Settle after a pause, not at once: a POST the client gave up on (read
            # timeout) may still be queued on the cluster and take effect a moment later;
            # settling at once would see no job yet and re-send it (a double rekey).
            return Retry(err, rule, settling=True)
    await rec.move(
        TargetState.WAITING,
        events.ATTEMPT_RETRY_SCHEDULED,
        detail={
            "error_code": err.code,
            "error_class": rule.error_class.value,
            "status": err.status,
        },
    )
    return Retry(err, rule)


def _note_transport(cluster: ClusterContext, err: OntapError) -> None:
    if err.kind in (ErrorKind.CONNECT, ErrorKind.SENT):
        cluster.breaker.record_transport_failure()
    else:
        cluster.breaker.record_success()


def _retry_limit(
    run: RunContext, cluster: ClusterContext, rec: TargetRecorder, step: Retry, settle_tries: int
) -> Finish | None:
    """The end of retrying: attempts, budgets (a Finish), else None to go on."""
    if step.settling:
        if settle_tries >= MAX_SETTLE_TRIES:
            return Finish(Outcome.UNVERIFIED, "cannot_settle", step.error, step.rule)
        return None
    limit = step.rule.max_attempts or run.options.max_attempts
    if rec.row.attempts >= limit:
        bounded = step.rule.error_class is ErrorClass.BOUNDED
        return Finish(
            Outcome.FAILED if bounded else Outcome.EXHAUSTED, "attempts", step.error, step.rule
        )
    if not try_spend_all([cluster.budget, run.budget]):
        return Finish(Outcome.EXHAUSTED, "retry_budget", step.error, step.rule)
    return None


async def _wait_for_retry(run: RunContext, rec: TargetRecorder, step: Retry) -> None:
    delay = _delay(run, rec, step)
    if run.deadline is not None and anyio.current_time() + delay >= run.deadline:
        delay = max(0.0, run.deadline - anyio.current_time())
    log.info(
        events.ATTEMPT_RETRY_SCHEDULED,
        error_code=step.error.code,
        error_class=step.rule.error_class.value,
        delay_s=round(delay, 3),
        cause=step.error.message,
    )
    await run.sleep(delay)


def _delay(run: RunContext, rec: TargetRecorder, step: Retry) -> float:
    if step.settling:
        return SETTLE_RETRY_S
    base = step.rule.base_delay_s * run.options.backoff_scale
    jitter = full_jitter(max(1, rec.row.attempts), base, step.rule.max_delay_s, run.rand.random)
    hinted = retry_after_delay(step.error.retry_after, run.options.retry_after_cap_s)
    return max(jitter, hinted or 0.0)


async def _finish(
    run: RunContext, rec: TargetRecorder, finish: Finish, *, decided: bool = False
) -> None:
    if not decided:
        run.outcome_decided(finish.outcome)
    err, rule = finish.error, finish.rule
    await rec.move(
        TargetState.DONE,
        events.TARGET_FINISHED,
        outcome=finish.outcome.value,
        reason=_text(finish.reason),
        key_id_after=finish.key_id_after,
        finished_at=time.time(),
        error_code=err.code if err else None,
        error_message=err.summary() if err else None,
        error_class=rule.error_class.value if rule else None,
        error_hint=rule.hint if rule else None,
    )
    row = rec.row
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


def _text(reason: str | None) -> str | None:
    return None if reason is None else str(reason)
