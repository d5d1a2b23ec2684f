"""The exit codes of `ontap-rekey`, decided in one place (spec: "Exit codes").

`exit_code(mode, status, outcomes)` is the one rule: the runner returns it, `plan` returns
it, and every report and the recap print it, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from orchestrator.core.outcomes import is_success

PLAN_MODE = "plan"  # RunMode.PLAN's value (the ledger owns the enum; core imports no ledger)
FINISHED = "finished"  # RunStatus values
ABORTED = "aborted"


class ExitCode(IntEnum):
    OK = 0  # run: every selected target rekeyed; plan: every target ready
    INTERNAL = 1  # unexpected internal error (traceback in the log, short message on stderr)
    USAGE = 2  # usage or inventory error (nothing was contacted)
    INCOMPLETE = 3  # run finished, some targets not rekeyed
    ABORTED = 4  # run aborted (failure budget, fail-fast, deadline)
    NOT_READY = 5  # plan: some targets not ready; history: some targets too old
    INTERRUPTED = 130  # interrupted; the ledger is consistent and `resume` continues


def exit_code(mode: str, status: str, outcomes: Iterable[str | None]) -> ExitCode:
    """The exit code of a closed run (`mode`/`status` are RunMode/RunStatus values).

    `outcomes` are the targets' stored outcomes; `None` (no outcome) is never success, so
    a target left without one can never make a run green. A status other than finished or
    aborted (interrupted, or still active after a crash) is resumable: 130.
    """
    outcomes = list(outcomes)
    if mode == PLAN_MODE:
        return ExitCode.OK if all(map(is_success, outcomes)) else ExitCode.NOT_READY
    if status == ABORTED:
        return ExitCode.ABORTED
    if status != FINISHED:
        return ExitCode.INTERRUPTED
    return ExitCode.OK if all(map(is_success, outcomes)) else ExitCode.INCOMPLETE
