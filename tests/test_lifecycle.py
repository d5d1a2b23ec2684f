"""The lifecycle table (core/lifecycle.py): every state x every observation, and the
invariants the table itself must enforce."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.errors import ErrorClass
from orchestrator.core.lifecycle import (
    IN_FLIGHT,
    NO_EVIDENCE,
    TABLE,
    Action,
    Decision,
    Event,
    Evidence,
    IllegalTransition,
    Observation,
    Reason,
    Wait,
    decide,
    job_failure_event,
    post_error_event,
    read_error_event,
)
from orchestrator.core.targets import Outcome, TargetState

S, E = TargetState, Event
EVIDENCE = [
    Evidence(),
    Evidence().accept("post", "job-1"),
    Evidence(accepted=True, succeeded=True, how="post"),
    Evidence(accepted=True, key_changed=True, how="key_id"),
    Evidence(accepted=True, failed=True, job_uuid="job-1", how="post"),
    Evidence().accept("key_store"),
]
OBSERVATIONS = [
    Observation(event, reason, bounded)
    for event in Event
    for reason in (None, Reason.AUTH_FAILED, Reason.ATTEMPTS, Reason.READ_BACK_FAILED)
    for bounded in (False, True)
]
CELLS = list(itertools.product(TargetState, EVIDENCE, OBSERVATIONS))
# Observations that prove nothing of ours runs any more (then the slots may go back).
NOTHING_RUNS = {
    E.BEGIN,
    E.POST_RETRYABLE,
    E.POST_BOUNDED,
    E.JOB_FAILED_RETRYABLE,
    E.JOB_FAILED_BOUNDED,
    E.NOT_SUBMITTED,
    E.STOP,
    E.DEADLINE,
    E.CLUSTER_CLOSED,
    E.LIMIT,
}


def _decision(state: TargetState, evidence: Evidence, obs: Observation) -> Decision | None:
    try:
        return decide(state, evidence, obs)
    except IllegalTransition:
        return None


def test_every_state_has_a_row_and_done_accepts_nothing() -> None:
    assert set(TABLE) == set(TargetState)
    assert TABLE[S.DONE] == {}
    for event in Event:
        with pytest.raises(IllegalTransition):
            decide(S.DONE, Evidence(), Observation(event))


@pytest.mark.parametrize("state", [s for s in TargetState if s is not S.DONE])
def test_every_state_can_begin_stop_and_hit_a_closed_cluster(state: TargetState) -> None:
    """A target read back from the ledger in any state can be taken up, and a stop or a
    closed cluster always has an answer (never an illegal transition)."""
    for event in (E.BEGIN, E.STOP, E.DEADLINE, E.CLUSTER_CLOSED):
        assert _decision(state, Evidence(), Observation(event)) is not None


def test_every_cell_is_well_formed() -> None:
    """FINISH goes to DONE with an outcome; everything else stays out of DONE without one."""
    for state, evidence, obs in CELLS:
        decision = _decision(state, evidence, obs)
        if decision is None:
            continue
        if decision.action is Action.FINISH:
            assert decision.state is S.DONE and decision.outcome is not None, (state, obs)
            assert decision.wait is Wait.NONE
        else:
            assert decision.state is not S.DONE and decision.outcome is None, (state, obs)


def test_sticky_evidence_never_leads_to_a_post() -> None:
    """(a) Once an attempt is accepted (and not seen failing) no cell sends a POST."""
    for state, evidence, obs in CELLS:
        decision = _decision(state, evidence, obs)
        if decision is not None and evidence.blocks_post:
            assert decision.action is not Action.POST, (state, evidence, obs)


def test_only_a_proven_absence_or_an_ended_attempt_leads_back_to_a_post() -> None:
    """(b) From a state where a POST may be running, the way back to a POST is only
    NOT_SUBMITTED (the search could have found it) or a failed/refused answer."""
    for state, evidence, obs in CELLS:
        decision = _decision(state, evidence, obs)
        if decision is None or state not in IN_FLIGHT or decision.action is not Action.POST:
            continue
        assert obs.event in NOTHING_RUNS, (state, obs)


def test_slots_are_kept_while_something_of_ours_may_run() -> None:
    """(c) A backoff (slots released) is decided only on an observation proving that
    nothing of ours runs; every wait in flight keeps the slots."""
    for state, evidence, obs in CELLS:
        decision = _decision(state, evidence, obs)
        if decision is None:
            continue
        if decision.wait is Wait.BACKOFF:
            assert obs.event in NOTHING_RUNS, (state, obs)
            assert decision.state is S.WAITING
        elif decision.wait is not Wait.NONE:
            assert decision.hold, (state, obs)


def test_cannot_rule_out_ends_unverified_and_is_never_resent() -> None:
    for evidence in EVIDENCE:
        decision = decide(S.UNCERTAIN, evidence, Observation(E.CANNOT_RULE_OUT))
        assert (decision.outcome, decision.reason) == (Outcome.UNVERIFIED, Reason.CANNOT_SETTLE)


def test_not_submitted_retries_only_without_evidence() -> None:
    assert decide(S.UNCERTAIN, Evidence(), Observation(E.NOT_SUBMITTED)).action is Action.POST
    accepted = Evidence().accept("settle_job", "job-1")
    assert decide(S.UNCERTAIN, accepted, Observation(E.NOT_SUBMITTED)).action is Action.VERIFY


@pytest.mark.parametrize(
    ("evidence", "outcome", "reason"),
    [
        (Evidence(accepted=True, succeeded=True), Outcome.REKEYED, None),
        (Evidence(accepted=True, key_changed=True), Outcome.REKEYED, None),
        (Evidence().accept("post", "job-1"), Outcome.UNVERIFIED, Reason.OUTCOME_UNKNOWN),
        (Evidence().accept("key_store"), Outcome.UNVERIFIED, Reason.OUTCOME_UNKNOWN),
    ],
)
def test_a_healthy_read_back_is_rekeyed_only_with_proof_of_success(
    evidence: Evidence, outcome: Outcome, reason: Reason | None
) -> None:
    """A lost job is decided by the read-back: `rekeyed` needs the job seen succeeding or
    the key id changed; a re-version whose job expired unseen stays `unverified`."""
    decision = decide(S.VERIFYING, evidence, Observation(E.VERIFIED))
    assert (decision.outcome, decision.reason) == (outcome, reason)


EXPECTED: list[tuple[TargetState, Event, TargetState, Action, Wait, Outcome | None]] = [
    (S.PENDING, E.BEGIN, S.INTENT, Action.POST, Wait.NONE, None),
    (S.PENDING, E.STOP, S.DONE, Action.FINISH, Wait.NONE, Outcome.ABORTED),
    (S.PENDING, E.DEADLINE, S.DONE, Action.FINISH, Wait.NONE, Outcome.ABORTED),
    (S.PENDING, E.CLUSTER_CLOSED, S.DONE, Action.FINISH, Wait.NONE, Outcome.SKIPPED),
    (S.WAITING, E.DEADLINE, S.DONE, Action.FINISH, Wait.NONE, Outcome.EXHAUSTED),
    (S.WAITING, E.LIMIT, S.DONE, Action.FINISH, Wait.NONE, Outcome.EXHAUSTED),
    (S.INTENT, E.BEGIN, S.UNCERTAIN, Action.SETTLE, Wait.NONE, None),  # crash-resume
    (S.INTENT, E.POST_JOB, S.SUBMITTED, Action.FOLLOW, Wait.NONE, None),
    (S.INTENT, E.POST_DONE, S.VERIFYING, Action.VERIFY, Wait.NONE, None),
    (S.INTENT, E.POST_DONE_NO_JOB, S.VERIFYING, Action.VERIFY, Wait.NONE, None),
    (S.INTENT, E.POST_RETRYABLE, S.WAITING, Action.POST, Wait.BACKOFF, None),
    (S.INTENT, E.POST_UNCERTAIN, S.UNCERTAIN, Action.SETTLE, Wait.SETTLE, None),
    (S.INTENT, E.POST_AUTH, S.DONE, Action.FINISH, Wait.NONE, Outcome.SKIPPED),
    (S.INTENT, E.POST_SKIP, S.DONE, Action.FINISH, Wait.NONE, Outcome.SKIPPED),
    (S.INTENT, E.POST_FATAL, S.DONE, Action.FINISH, Wait.NONE, Outcome.FAILED),
    (S.SUBMITTED, E.BEGIN, S.SUBMITTED, Action.FOLLOW, Wait.NONE, None),
    (S.SUBMITTED, E.JOB_RUNNING, S.SUBMITTED, Action.FOLLOW, Wait.POLL, None),
    (S.SUBMITTED, E.JOB_SUCCEEDED, S.VERIFYING, Action.VERIFY, Wait.NONE, None),
    (S.SUBMITTED, E.JOB_FAILED_FATAL, S.DONE, Action.FINISH, Wait.NONE, Outcome.FAILED),
    (S.SUBMITTED, E.JOB_LOST, S.VERIFYING, Action.VERIFY, Wait.NONE, None),
    (S.SUBMITTED, E.READ_RETRYABLE, S.SUBMITTED, Action.FOLLOW, Wait.POLL, None),
    (S.SUBMITTED, E.READ_AUTH, S.DONE, Action.FINISH, Wait.NONE, Outcome.UNVERIFIED),
    (S.SUBMITTED, E.STOP, S.SUBMITTED, Action.FOLLOW, Wait.NONE, None),
    (S.UNCERTAIN, E.FOUND_JOB, S.SUBMITTED, Action.FOLLOW, Wait.NONE, None),
    (S.UNCERTAIN, E.FOUND_REKEY, S.VERIFYING, Action.VERIFY, Wait.POLL, None),
    (S.UNCERTAIN, E.FOUND_KEY, S.VERIFYING, Action.VERIFY, Wait.NONE, None),
    (S.UNCERTAIN, E.TOO_EARLY, S.UNCERTAIN, Action.SETTLE, Wait.SETTLE, None),
    (S.UNCERTAIN, E.NOT_SUBMITTED, S.WAITING, Action.POST, Wait.BACKOFF, None),
    (S.UNCERTAIN, E.READ_RETRYABLE, S.UNCERTAIN, Action.SETTLE, Wait.SETTLE, None),
    (S.UNCERTAIN, E.CLUSTER_CLOSED, S.DONE, Action.FINISH, Wait.NONE, Outcome.UNVERIFIED),
    (S.UNCERTAIN, E.STOP, S.UNCERTAIN, Action.SETTLE, Wait.NONE, None),
    (S.VERIFYING, E.VERIFY_PENDING, S.VERIFYING, Action.VERIFY, Wait.POLL, None),
    (S.VERIFYING, E.VERIFY_MISMATCH, S.DONE, Action.FINISH, Wait.NONE, Outcome.UNVERIFIED),
    (S.VERIFYING, E.READ_FATAL, S.DONE, Action.FINISH, Wait.NONE, Outcome.UNVERIFIED),
]


@pytest.mark.parametrize(("state", "event", "to", "action", "wait", "outcome"), EXPECTED)
def test_declared_cells(
    state: TargetState,
    event: Event,
    to: TargetState,
    action: Action,
    wait: Wait,
    outcome: Outcome | None,
) -> None:
    decision = decide(state, Evidence(), Observation(event))
    assert (decision.state, decision.action, decision.wait, decision.outcome) == (
        to,
        action,
        wait,
        outcome,
    )


def test_a_stop_lets_in_flight_targets_finish() -> None:
    for state in IN_FLIGHT:
        for event in (E.STOP, E.DEADLINE):
            decision = decide(state, Evidence(), Observation(event, Reason.INTERRUPT))
            assert decision.action is not Action.FINISH and decision.state is state


def test_in_flight_targets_of_a_closed_cluster_end_unverified_never_skipped() -> None:
    for state in IN_FLIGHT:
        for reason in (Reason.AUTH_FAILED, Reason.CIRCUIT_OPEN):
            decision = decide(state, Evidence(), Observation(E.CLUSTER_CLOSED, reason))
            assert decision.outcome is Outcome.UNVERIFIED, state


def test_error_classes_map_to_events_totally() -> None:
    for error_class in ErrorClass:
        assert post_error_event(error_class).name.startswith("POST_")
        assert job_failure_event(error_class).name.startswith("JOB_FAILED_")
        assert read_error_event(error_class).name.startswith("READ_")
    assert read_error_event(ErrorClass.AUTH) is E.READ_AUTH
    assert post_error_event(ErrorClass.UNCERTAIN) is E.POST_UNCERTAIN


def test_evidence_survives_the_ledger_round_trip() -> None:
    for evidence in EVIDENCE:
        assert Evidence.from_json(evidence.to_json()) == evidence
    assert Evidence.from_json({}) == Evidence()


def test_every_reason_is_documented_in_the_report_doc() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "report.md").read_text()
    missing = [reason.value for reason in Reason if f"`{reason.value}`" not in text]
    assert missing == []


_evidence = st.builds(
    Evidence,
    accepted=st.booleans(),
    failed=st.booleans(),
    job_uuid=st.none() | st.sampled_from(["j-1", "j-2"]),
    succeeded=st.booleans(),
    key_changed=st.booleans(),
    how=st.none() | st.sampled_from(["post", "job", "key_id"]),
    ended_seen_at=st.none() | st.floats(0, 1e10),
)


@given(_evidence, st.sampled_from(["post", "settle_job"]), st.none() | st.just("j-3"))
def test_accept_is_the_replace_it_stands_for(evidence: Evidence, how: str, job: str | None) -> None:
    """`accept`, built field by field, equals `dataclasses.replace` with its rule."""
    expected = dataclasses.replace(
        evidence, accepted=True, job_uuid=job or evidence.job_uuid, how=evidence.how or how
    )
    assert evidence.accept(how, job) == expected


@given(_evidence, st.booleans(), st.floats(0, 1e10))
def test_ended_records_the_end_seen_and_keeps_the_rest(
    evidence: Evidence, succeeded: bool, at: float
) -> None:
    """A job seen ending: `succeeded` or `failed` set (the other kept), the time recorded."""
    flag = {"succeeded": True} if succeeded else {"failed": True}
    expected = dataclasses.replace(evidence, ended_seen_at=at, **flag)
    assert evidence.ended(succeeded=succeeded, seen_at=at) == expected


def test_no_evidence_is_what_an_empty_record_reads_as() -> None:
    assert Evidence.from_json({}) == Evidence.from_json(None) == NO_EVIDENCE == Evidence()
