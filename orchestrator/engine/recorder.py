"""One target's row, moved through its states with every change committed first.

The write-ahead discipline lives here: `move()` returns only when the ledger has committed
the new row and its transition, so the engine can send the POST that depends on it.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Protocol

import structlog

from orchestrator.core.settling import Calibration
from orchestrator.core.targets import TargetState
from orchestrator.ledger.records import TargetRow, Transition

log = structlog.get_logger()


class LedgerWriter(Protocol):
    """What the engine needs of the ledger: a committed write (see AsyncLedger)."""

    async def write(self, row: TargetRow, transition: Transition | None = None) -> None: ...

    async def save_calibration(
        self, calibration: Calibration, run_id: str | None = None
    ) -> None: ...


class TargetRecorder:
    """Holds a target's current row; every change goes to the ledger before it is used."""

    def __init__(self, row: TargetRow, ledger: LedgerWriter) -> None:
        self.row = row
        self._ledger = ledger

    async def move(self, state: TargetState, event: str, /, **changes: Any) -> TargetRow:
        """Commit `state` (and row field `changes`) with a transition named `event`."""
        detail = {k: v for k, v in changes.pop("detail", {}).items() if v is not None}
        self.row = replace(self.row, state=state, **changes)
        transition = Transition(
            run_id=self.row.run_id,
            key=self.row.key,
            at=time.time(),
            state=state,
            attempt=self.row.attempts,
            event=event,
            detail=detail,
        )
        await self._ledger.write(self.row, transition)
        return self.row
