"""A realistic finished run as ledger rows: 3 clusters, every outcome, retries, a plan run.

Shared by the report, recap and report-command tests (not a test module itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus, TargetRow, Transition

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
RUN_ID = "20260101T000000Z-abc123"
SECRET = "correct-horse-battery-staple"

S = TargetState


@dataclass
class Story:
    """One target's row fields and the (offset, state, event, detail) steps it went through."""

    key: str
    outcome: str
    steps: list[tuple[float, TargetState, str, dict[str, Any]]]
    row: dict[str, Any] = field(default_factory=dict)


def _rekeyed(key: str, start: float, retries: int = 0) -> Story:
    steps: list[tuple[float, TargetState, str, dict[str, Any]]] = [
        (0.0, S.PENDING, "discovery.finished", {}),
    ]
    t = start
    for attempt in range(retries):
        steps += [
            (t, S.INTENT, "attempt.started", {"attempt": attempt + 1}),
            (
                t + 0.4,
                S.WAITING,
                "attempt.retry_scheduled",
                {"error_code": "65539436", "delay_s": 4.0},
            ),
        ]
        t += 4.4
    steps += [
        (t, S.INTENT, "attempt.started", {}),
        (t + 0.3, S.SUBMITTED, "attempt.submitted", {"job_uuid": f"job-{key}"}),
        (t + 6.0, S.VERIFYING, "attempt.settled", {"how": "job"}),
        (t + 6.5, S.DONE, "target.finished", {"outcome": "rekeyed"}),
    ]
    row = {
        "attempts": retries + 1,
        "job_uuid": f"job-{key}",
        "key_id_after": "key-new",
        "started_at": T0 + start,
        "finished_at": T0 + t + 6.5,
    }
    return Story(key, "rekeyed", steps, row)


def _stories() -> list[Story]:
    unverified = _rekeyed("east-01/svm_d", 2.0)
    unverified.outcome = "unverified"
    unverified.row |= {
        "key_id_after": "key-old",
        "error_class": "unverified",
        "error_message": "read-back shows key-old",
    }
    exhausted_steps: list[tuple[float, TargetState, str, dict[str, Any]]] = [
        (0.0, S.PENDING, "discovery.finished", {})
    ]
    for n in range(3):
        exhausted_steps += [
            (1.0 + 8 * n, S.INTENT, "attempt.started", {}),
            (
                1.5 + 8 * n,
                S.WAITING,
                "attempt.retry_scheduled",
                {"error_code": "65539436", "delay_s": 7.5},
            ),
        ]
    exhausted_steps.append((25.0, S.DONE, "target.finished", {}))
    return [
        _rekeyed("east-01/svm_a", 1.0),
        _rekeyed("east-01/svm_b", 1.5, retries=2),
        _rekeyed("east-01/-", 2.0),
        unverified,
        Story(
            "east-01/svm_e",
            "failed",
            [
                (0.0, S.PENDING, "discovery.finished", {}),
                (3.0, S.INTENT, "attempt.started", {}),
                (3.6, S.DONE, "target.finished", {}),
            ],
            {
                "attempts": 1,
                "error_code": "65537547",
                "error_class": "fatal",
                "error_message": f"invalid key id (password was {SECRET})",
                "error_hint": "Check the key id and the IAM policy of the AWS KMS key.",
                "started_at": T0 + 3.0,
                "finished_at": T0 + 3.6,
            },
        ),
        _rekeyed("west-02/svm_finance", 1.0),
        Story(
            "west-02/svm_hr",
            "exhausted",
            exhausted_steps,
            {
                "attempts": 3,
                "error_code": "65539436",
                "error_class": "retryable",
                "error_message": "keystore initializing",
                "started_at": T0 + 1.0,
                "finished_at": T0 + 25.0,
            },
        ),
        Story(
            "west-02/svm_ops",
            "skipped",
            [(0.0, S.PENDING, "discovery.finished", {}), (0.5, S.DONE, "target.finished", {})],
            {
                "reason": "not_configured",
                "error_code": "65537926",
                "error_class": "skip",
                "error_message": "no AWS KMS configuration",
                "finished_at": T0 + 0.5,
            },
        ),
        Story(
            "west-02/svm_dev",
            "aborted",
            [(0.0, S.PENDING, "discovery.finished", {}), (26.0, S.DONE, "run.aborted", {})],
            {"reason": "failure_budget", "finished_at": T0 + 26.0},
        ),
        Story(
            "south-03/-",
            "skipped",
            [(0.2, S.DONE, "discovery.failed", {})],
            {
                "reason": "unreachable",
                "error_class": "retryable",
                "error_message": "connection refused",
                "finished_at": T0 + 0.2,
            },
        ),
        Story(
            "south-03/svm_x",
            "skipped",
            [(0.2, S.DONE, "discovery.failed", {})],
            {
                "reason": "unreachable",
                "error_class": "retryable",
                "error_message": "connection refused",
                "finished_at": T0 + 0.2,
            },
        ),
    ]


def make_run(mode: RunMode = RunMode.RUN, status: RunStatus = RunStatus.ABORTED) -> RunRecord:
    """The run record of the synthetic run."""
    return RunRecord(
        run_id=RUN_ID if mode is not RunMode.PLAN else RUN_ID + "-plan",
        mode=mode,
        inventory_path="inventories/fleet.yaml",
        inventory_sha256="0" * 64,
        options={
            "concurrency": 64,
            "per_cluster": 2,
            "waves": "1,10%,100%",
        },
        tls_verify_disabled=("south-03",),
        operator="alice@bastion",
        started_at=T0,
        status=status,
        reason=None,
        ended_at=T0 + 27.0,
        selection={"clusters": ["*"]},
    )


def make_rows(run: RunRecord) -> tuple[list[TargetRow], list[Transition]]:
    """Rows and transitions of the synthetic run (every Outcome, 3 clusters)."""
    rows: list[TargetRow] = []
    transitions: list[Transition] = []
    for wave, story in enumerate(_stories()):
        key = TargetKey.parse(story.key)
        fields = {
            "key_id_before": "key-old",
            "key_id_intended": "key-new",
            "config_uuid": f"uuid-{story.key}",
            "wave": min(wave, 2),
        } | story.row
        rows.append(
            TargetRow(run_id=run.run_id, key=key, state=S.DONE, outcome=story.outcome, **fields)
        )
        transitions += [
            Transition(
                run_id=run.run_id,
                key=key,
                at=T0 + offset,
                state=state,
                attempt=detail.pop("attempt", 1),
                event=event,
                detail=detail,
            )
            for offset, state, event, detail in story.steps
        ]
    return rows, transitions


def make_plan() -> tuple[RunRecord, list[TargetRow]]:
    """A plan run: two ready targets, two not ready with their reasons and facts."""
    run = make_run(RunMode.PLAN, RunStatus.FINISHED)
    facts = {"version": "9.14.1", "key_store": "active", "key_id": "key-old"}
    specs = [
        ("east-01/svm_a", "ready", None, facts),
        ("east-01/svm_b", "ready", None, facts),
        ("west-02/svm_hr", "not_ready", "key_store_switching", facts | {"key_store": "switching"}),
        ("south-03/-", "not_ready", "unsupported_version", {"version": "9.10.1"}),
    ]
    rows = [
        TargetRow(
            run_id=run.run_id,
            key=TargetKey.parse(key),
            state=S.DONE,
            outcome=outcome,
            reason=reason,
            facts=fact,
            finished_at=T0 + 1.0,
        )
        for key, outcome, reason, fact in specs
    ]
    return run, rows
