"""The exit codes of `ontap-rekey`, decided in one place (spec: "Exit codes")."""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum

from orchestrator.core.targets import Outcome


class ExitCode(IntEnum):
    OK = 0  # run: every selected target rekeyed; plan: every target ready
    INTERNAL = 1  # unexpected internal error (traceback in the log, short message on stderr)
    USAGE = 2  # usage or inventory error (nothing was contacted)
    INCOMPLETE = 3  # run finished, some targets not rekeyed
    ABORTED = 4  # run aborted (failure budget, fail-fast, deadline)
    NOT_READY = 5  # plan: some targets not ready; history: some targets too old
    INTERRUPTED = 130  # interrupted; the ledger is consistent and `resume` continues


def run_exit_code(outcomes: Iterable[Outcome], *, aborted: bool, interrupted: bool) -> ExitCode:
    """The exit code of a finished `run` or `resume`."""
    if interrupted:
        return ExitCode.INTERRUPTED
    if aborted:
        return ExitCode.ABORTED
    if all(outcome is Outcome.REKEYED for outcome in outcomes):
        return ExitCode.OK
    return ExitCode.INCOMPLETE


def plan_exit_code(ready: Iterable[bool]) -> ExitCode:
    """The exit code of `plan`: 0 when every target is ready, else 5."""
    return ExitCode.OK if all(ready) else ExitCode.NOT_READY
