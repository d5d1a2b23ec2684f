"""User-facing errors the command line maps to exit codes (see `orchestrator.cli`)."""

from __future__ import annotations

from orchestrator.core.exitcodes import ExitCode


class UserError(Exception):
    """A mistake of the user's: one or more one-line messages, no traceback."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, *lines: str) -> None:
        self.lines = tuple(lines)
        super().__init__("\n".join(lines))


class InventoryError(UserError):
    """The inventory is broken; `lines` are `file:line:col: dotted.path: what (how to fix)`."""


class StateError(UserError):
    """The ledger refuses: unknown run id, another run active, inventory changed."""
