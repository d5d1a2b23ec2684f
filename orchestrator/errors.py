"""The errors a user's mistake raises, one class per layer that raises it.

    UserError              one or more one-line messages, never a traceback
     +-- InventoryError    config/: the inventory is broken (`file:line:col: ...` lines)
     +-- StateError        ledger/ (and the commands that ask it): the ledger refuses
     +-- CredentialError   ontap/: a secret or a client certificate cannot be read
     +-- RunInterruptedError  engine/: an unexpected error stopped a run (resumable)

They carry no exit code: `orchestrator.cli` maps each class to one, in one place, so a
layer below the command line never decides how the process ends. (They live here, not
in their layers, so that the command line maps them without importing those layers.)
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake of the user's: one or more one-line messages, no traceback."""

    def __init__(self, *lines: str) -> None:
        self.lines = tuple(lines)
        super().__init__("\n".join(lines))


class InventoryError(UserError):
    """The inventory is broken; `lines` are `file:line:col: dotted.path: what (how to fix)`."""


class StateError(UserError):
    """The ledger refuses: unknown run id, another run active, inventory changed."""


class CredentialError(UserError):
    """A cluster's secret or client certificate cannot be read (named, never shown)."""


class RunInterruptedError(UserError):
    """An unexpected error stopped a run: it is `interrupted` in the ledger, resumable."""
