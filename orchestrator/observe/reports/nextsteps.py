"""Why a run stopped and the exact commands that continue it (pure functions).

The recap, report.md and report.html all say it through `next_steps`, so an on-call
engineer reads the same reason and copies the same command wherever they look. The stop
reason is read from the rows: the targets the stop left `aborted` carry it.
"""

from __future__ import annotations

import shlex
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.core import outcomes
from orchestrator.core.targets import AbortReason, Outcome
from orchestrator.ledger import DEFAULT_STATE
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus, TargetRow
from orchestrator.observe.text import plural

FAILED_CANARY = frozenset(o.value for o in outcomes.FAILURES | {Outcome.SKIPPED})


@dataclass(frozen=True)
class Step:
    command: str
    why: str


@dataclass(frozen=True)
class NextSteps:
    stopped: str | None  # why the run stopped early (None: it did not)
    steps: tuple[Step, ...]


def next_steps(
    run: RunRecord, rows: Sequence[TargetRow], *, state: str | None, failed_txt: str
) -> NextSteps:
    """What stopped `run` and what to run next; `failed_txt` is how to name its failed.txt."""
    if run.mode is RunMode.PLAN:
        return NextSteps(None, _plan_steps(run, rows, state, failed_txt))
    steps: list[Step] = []
    unstarted = [r for r in rows if r.outcome in (None, Outcome.ABORTED.value)]
    if unstarted and run.status is not RunStatus.FINISHED:
        steps.append(Step(_resume(run, state), f"continues the {_n(len(unstarted))} not started"))
    retry = [r for r in rows if r.outcome not in (None, Outcome.ABORTED.value)]
    retry = [r for r in retry if not outcomes.is_success(r.outcome)]
    if retry:
        then = "then, " if steps else ""
        steps.append(
            Step(
                _rerun(run, state, failed_txt),
                f"{then}once the errors above are fixed, rekeys the {_n(len(retry))} "
                "not rekeyed again",
            )
        )
    return NextSteps(stopped(run, rows), tuple(steps))


def stopped(run: RunRecord, rows: Sequence[TargetRow]) -> str | None:
    """Why the run stopped before every target had its turn, in one sentence."""
    if run.status not in (RunStatus.ABORTED, RunStatus.INTERRUPTED):
        return None
    reasons = Counter(r.reason for r in rows if r.outcome == Outcome.ABORTED.value and r.reason)
    reason = reasons.most_common(1)[0][0] if reasons else None
    if reason is None and run.status is RunStatus.INTERRUPTED:
        return "interrupted before every target had its outcome (a signal or a crash)"
    return _stop_sentence(run, rows, reason)


def _stop_sentence(run: RunRecord, rows: Sequence[TargetRow], reason: str | None) -> str:
    options = run.options
    if reason == AbortReason.FAILURE_BUDGET:
        return (
            f"the failure budget ran out: more than {options.get('max_fail_percent', 10):g} % "
            f"of the finished targets failed (--max-fail-percent, over at least "
            f"{options.get('min_fail_sample', 5)} finished)"
        )
    if reason == AbortReason.FAIL_FAST:
        return "--fail-fast: the first target that failed stopped the run"
    if reason == AbortReason.DEADLINE:
        deadline = options.get("deadline_s") or 0
        return f"the --deadline ({deadline:g} s) passed: no attempt starts after it"
    if reason == AbortReason.CANARY_FAILED:
        canary = [str(r.key) for r in rows if r.wave == 1 and r.outcome in FAILED_CANARY]
        return f"the canary ({', '.join(canary) or '?'}) was not rekeyed: no wave after it started"
    if reason == AbortReason.INTERRUPT:
        return "interrupted (SIGINT/SIGTERM): rekeys in flight finished, the rest did not start"
    return "stopped early"


def _plan_steps(
    run: RunRecord, rows: Sequence[TargetRow], state: str | None, failed_txt: str
) -> tuple[Step, ...]:
    inventory = shlex.quote(run.inventory_path)
    selection = _state_flag(state)
    not_ready = [r for r in rows if not outcomes.is_success(r.outcome)]
    ready = len(rows) - len(not_ready)
    steps = []
    if ready:
        selectors, why = _selectors(run.selection)
        command = f"ontap-rekey run {inventory}{selectors}{selection}"
        steps.append(Step(command, f"{_n(ready)} ready now{why}"))
    if not_ready:
        command = f"ontap-rekey plan {inventory} --targets @{shlex.quote(failed_txt)}{selection}"
        why = f"once the reasons above are fixed, checks the {_n(len(not_ready))} not ready again"
        steps.append(Step(command, why))
    return tuple(steps)


def _selectors(selection: dict[str, object]) -> tuple[str, str]:
    """The plan's selectors as flags, and a note when they cannot be spelled out."""
    if not selection:  # not recorded: the run must repeat them, never widen to the fleet
        return "", "; repeat the plan's selectors"
    flags = [
        f" --{flag} {shlex.quote(str(value))}"
        for key, flag in (("cluster", "cluster"), ("svm", "svm"), ("tag", "tag"))
        for value in _values(selection.get(key))
    ]
    if _values(selection.get("targets")):
        return "".join(flags) + " --targets @FILE", "; FILE: the plan's --targets file"
    return "".join(flags), ""


def _values(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _resume(run: RunRecord, state: str | None) -> str:
    return f"ontap-rekey resume {run.run_id}{_state_flag(state)}"


def _rerun(run: RunRecord, state: str | None, failed_txt: str) -> str:
    parts = ["ontap-rekey", "run", shlex.quote(run.inventory_path)]
    parts.append(f"--targets @{shlex.quote(failed_txt)}")
    if run.mode is RunMode.EMERGENCY:
        parts.append(f"--emergency --reason {shlex.quote(run.reason or '')}")
    return " ".join(parts) + _state_flag(state)


def _state_flag(state: str | None) -> str:
    return "" if state in (None, DEFAULT_STATE) else f" --state {shlex.quote(str(state))}"


def _n(count: int) -> str:
    return plural(count, "target")
