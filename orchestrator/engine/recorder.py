"""One target's row, moved through its states with every change committed first.

The write-ahead discipline lives here: `move()` returns only when the ledger has committed
the new row and its transition, so the engine can send the POST that depends on it.
"""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any, Protocol, cast

from orchestrator.core.settling import Calibration
from orchestrator.core.targets import TargetState
from orchestrator.ledger.records import TargetRow, Transition

_ROW_FIELDS = frozenset(field.name for field in fields(TargetRow))


def row_with(row: TargetRow, **changes: Any) -> TargetRow:
    """`dataclasses.replace(row, **changes)`, at a fraction of its cost (5 vs 23 us: a
    row has 26 fields, and `replace` walks them and sets each through the frozen class's
    `object.__setattr__`). Valid because `TargetRow` has no `__post_init__`, no field
    outside `__init__` and no validation (tests/engine/test_recorder.py keeps it so)."""
    if not _ROW_FIELDS.issuperset(changes):
        unknown = ", ".join(sorted(set(changes) - _ROW_FIELDS))
        raise TypeError(f"TargetRow has no field {unknown}")
    copy = object.__new__(TargetRow)
    values = copy.__dict__
    values.update(row.__dict__)
    values.update(changes)
    return copy


class LedgerWriter(Protocol):
    """What the engine needs of the ledger: a committed write (see AsyncLedger)."""

    async def write(self, row: TargetRow, transition: Transition | None = None) -> None: ...

    async def save_calibration(
        self, calibration: Calibration, run_id: str | None = None
    ) -> None: ...


class QueuedWrite(Protocol):
    """A write whose place in the commit order is taken; `committed()` awaits its commit."""

    async def committed(self) -> None: ...


class QueuingWriter(LedgerWriter, Protocol):
    """A ledger that can also queue a write without waiting for it (AsyncLedger): it
    commits in queue order, so a write queued later never lands before it."""

    def write_queued(self, row: TargetRow, transition: Transition | None = None) -> QueuedWrite: ...


class TargetRecorder:
    """Holds a target's current row; every change goes to the ledger before it is used."""

    __slots__ = ("_ledger", "_queue", "_queued", "row")

    def __init__(self, row: TargetRow, ledger: LedgerWriter) -> None:
        self.row = row
        self._ledger = ledger
        # (None for a ledger that cannot queue, e.g. a test's store: `move_queued` waits)
        self._queue: QueuingWriter | None = (
            cast(QueuingWriter, ledger) if hasattr(ledger, "write_queued") else None
        )
        self._queued: QueuedWrite | None = None

    async def move(self, state: TargetState, event: str, /, **changes: Any) -> TargetRow:
        """Commit `state` (and row field `changes`) with a transition named `event`."""
        await self.flush()
        row, transition = self._moved(state, event, changes)
        await self._ledger.write(row, transition)
        return row

    async def move_queued(self, state: TargetState, event: str, /, **changes: Any) -> TargetRow:
        """`move`, returning once the write is queued instead of committed: whatever is
        written after it (any target's) is committed no earlier (the ledger commits in
        queue order). The next `move` or `flush` awaits its commit and raises its error.
        With a ledger that cannot queue, the same as `move`."""
        if self._queue is None:
            return await self.move(state, event, **changes)
        await self.flush()
        row, transition = self._moved(state, event, changes)
        self._queued = self._queue.write_queued(row, transition)
        return row

    async def flush(self) -> None:
        """Wait until the queued write (if any) is committed; raise its error."""
        queued, self._queued = self._queued, None
        if queued is not None:
            await queued.committed()

    def _moved(
        self, state: TargetState, event: str, changes: dict[str, Any]
    ) -> tuple[TargetRow, Transition]:
        detail = {k: v for k, v in changes.pop("detail", {}).items() if v is not None}
        self.row = row_with(self.row, state=state, **changes)
        transition = Transition(
            run_id=self.row.run_id,
            key=self.row.key,
            at=time.time(),
            state=state,
            attempt=self.row.attempts,
            event=event,
            detail=detail,
        )
        return self.row, transition
