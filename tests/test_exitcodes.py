"""core/exitcodes.exit_code: the one rule every command, report and the recap use."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.exitcodes import ExitCode, exit_code
from orchestrator.core.outcomes import FAILURES, NOT_ATTEMPTED, NOT_READY, READY, is_failure
from orchestrator.core.targets import Outcome

RUN_VALUES = [o.value for o in Outcome] + [None]


@given(st.lists(st.sampled_from(RUN_VALUES), min_size=1))
def test_a_finished_run_is_green_only_when_every_target_was_rekeyed(
    outcomes: list[str | None],
) -> None:
    """Never falsely green: one target without `rekeyed` (or without any outcome) is 3."""
    expected = ExitCode.OK if set(outcomes) == {"rekeyed"} else ExitCode.INCOMPLETE
    assert exit_code("run", "finished", outcomes) is expected
    assert exit_code("emergency", "finished", outcomes) is expected


@given(st.lists(st.sampled_from(RUN_VALUES)))
def test_a_stopped_run_is_4_and_an_interrupted_or_crashed_one_130(
    outcomes: list[str | None],
) -> None:
    assert exit_code("run", "aborted", outcomes) is ExitCode.ABORTED
    assert exit_code("run", "interrupted", outcomes) is ExitCode.INTERRUPTED
    assert exit_code("run", "active", outcomes) is ExitCode.INTERRUPTED  # crashed: resumable


def test_a_plan_is_0_when_every_target_is_ready_else_5() -> None:
    assert exit_code("plan", "finished", [READY, READY]) is ExitCode.OK
    assert exit_code("plan", "finished", [READY, NOT_READY]) is ExitCode.NOT_READY
    assert exit_code("plan", "finished", [READY, None]) is ExitCode.NOT_READY


def test_the_groupings_partition_the_outcomes_that_are_not_rekeyed() -> None:
    """Failures (budget, junit failure) and not attempted (junit skipped) never overlap, and
    with `rekeyed` they cover every outcome."""
    assert not FAILURES & NOT_ATTEMPTED
    assert FAILURES | NOT_ATTEMPTED | {Outcome.REKEYED} == set(Outcome)
    assert all(is_failure(o.value) for o in FAILURES) and is_failure(NOT_READY)
    assert not any(is_failure(o.value) for o in NOT_ATTEMPTED)
    assert not any(is_failure(value) for value in (Outcome.REKEYED.value, READY, None))
