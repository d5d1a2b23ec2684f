"""The ledger for the anyio engine: committed writes, group commit, off the event loop.

`await ledger.write(row, transition)` returns only once the write is committed, so the
engine can follow the write-ahead discipline (commit the intent, then send the POST).

Group commit without a background task: a writer queues its item; if no flush is in
progress it becomes the *leader*, takes everything queued and commits it in one
transaction in a worker thread; the writers that queued meanwhile wait for that flush to
end, and the first of them still pending leads the next one. So N concurrent writers
cost a handful of transactions (one fsync each) instead of N, no task group or thread
has to be started and stopped, and every write still has a caller awaiting it: nothing
is ever buffered that a crash could lose after `write` returned.

The wait is shielded from cancellation: a cancelled caller's write still lands (it may
already be in a transaction, and the engine's record must not depend on who was
cancelled); the cancellation is delivered once the write is committed. Only the leader's
flush and a wait that was cancelled take a shielded cancel scope (~10 us each with the
check after it): a writer that just waits for the flush it is in takes none.

Besides the writes, every other ledger call of a run (the lock, the run's record and
status, its rows, the calibrations) is awaited here too, on the same worker thread: this
class implements the engine's `RunStore` port (engine/store.py), and nothing of a run
blocks the event loop on SQLite or `flock`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

from orchestrator.core.settling import Calibration, CalibrationKind
from orchestrator.core.targets import TargetKey
from orchestrator.errors import StateError
from orchestrator.ledger.records import RunRecord, RunStatus, TargetRow, Transition
from orchestrator.ledger.store import Ledger, WriteItem

T = TypeVar("T")

_INTERRUPTED = RuntimeError("the ledger flush was interrupted; the write may not have landed")


@dataclass(eq=False)
class _Pending:
    item: WriteItem
    done: bool = False
    error: BaseException | None = field(default=None)


@dataclass
class WriteStats:
    """What the writer did: for benchmarks and tests."""

    writes: int = 0
    transactions: int = 0
    largest_batch: int = 0


class AsyncLedger:
    """Wraps a `Ledger` (not owned: `aclose` flushes but does not close it)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.stats = WriteStats()
        self._queue: list[_Pending] = []
        self._flushing = False
        self._flushed: anyio.Event | None = None  # set when the current flush ends
        self._limiter: anyio.CapacityLimiter | None = None  # created on the event loop

    async def write(self, row: TargetRow, transition: Transition | None = None) -> None:
        """Upsert `row` and append `transition`; return once both are committed.

        Raises what the commit raised (e.g. sqlite3.IntegrityError for a transition whose
        target was never recorded); other writers of the same batch are not affected.
        """
        pending = _Pending((row, transition))
        self._queue.append(pending)
        try:
            while not pending.done:
                await self._lead_or_follow()
        except BaseException:  # cancelled while it waited: the write lands all the same
            with anyio.CancelScope(shield=True):
                while not pending.done:
                    await self._lead_or_follow()
            raise
        if pending.error is not None:
            raise pending.error

    async def save_calibration(self, calibration: Calibration, run_id: str | None = None) -> None:
        """Record a cluster's job calibration (in the writer's thread; not group-committed:
        it is rare, and losing it only costs proofs of absence, never safety)."""
        await self._call(self.ledger.save_calibration, calibration, run_id)

    # -- the rest of the engine's RunStore port: each call on the writer's thread ---------

    @property
    def path(self) -> Path:
        return self.ledger.path

    async def new_run_id(self) -> str:
        return await self._call(self.ledger.new_run_id)

    async def acquire(self, run_id: str) -> None:
        await self._call(self.ledger.acquire, run_id)

    async def release(self) -> None:
        await self._call(self.ledger.release)

    async def create_run(self, run: RunRecord) -> None:
        await self._call(self.ledger.create_run, run)

    async def add_targets(self, rows: list[TargetRow]) -> None:
        await self._call(self.ledger.add_targets, rows)

    async def set_run_status(
        self, run_id: str, status: RunStatus, ended_at: float | None = None
    ) -> None:
        await self._call(self.ledger.set_run_status, run_id, status, ended_at)

    async def get_run(self, run_id: str) -> RunRecord:
        return await self._call(self.ledger.get_run, run_id)

    async def targets(self, run_id: str) -> list[TargetRow]:
        return await self._call(self.ledger.targets, run_id)

    async def recorded_jobs(self, since: float, facts_key: str) -> dict[TargetKey, set[str]]:
        return await self._call(self.ledger.recorded_jobs, since, facts_key)

    async def calibrations(self) -> dict[str, dict[CalibrationKind, Calibration]]:
        return await self._call(self.ledger.calibrations)

    async def unfinished_in_flight(self) -> dict[str, list[TargetKey]]:
        return await self._call(self.ledger.unfinished_in_flight)

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)` on the writer's thread: SQLite and `flock` never block the loop."""
        return await anyio.to_thread.run_sync(partial(func, *args), limiter=self._writer())

    async def aclose(self) -> None:
        """Wait until every queued write is committed."""
        with anyio.CancelScope(shield=True):
            while self._queue or self._flushing:
                await self._lead_or_follow()

    async def __aenter__(self) -> AsyncLedger:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _lead_or_follow(self) -> None:
        """Wait for the flush in progress (cancellable: `write` then waits again, shielded),
        or lead the next one (shielded: a flush once begun ends for every writer in it;
        a cancellation that came meanwhile is delivered once it has)."""
        if self._flushing:
            assert self._flushed is not None
            await self._flushed.wait()
        else:
            with anyio.CancelScope(shield=True):
                await self._flush()
            await anyio.lowlevel.checkpoint_if_cancelled()

    async def _flush(self) -> None:
        self._flushing, flushed = True, anyio.Event()
        self._flushed = flushed
        batch, self._queue = self._queue, []
        # Should something escape below, these writers must still stop waiting.
        errors: list[BaseException | None] = [_INTERRUPTED] * len(batch)
        try:
            errors = await anyio.to_thread.run_sync(
                _commit, self.ledger, [p.item for p in batch], limiter=self._writer()
            )
        except Exception as exc:  # handed to each writer of the batch
            errors = [exc] * len(batch)
        finally:
            for pending, error in zip(batch, errors, strict=True):
                pending.done, pending.error = True, error
            self._count(batch)
            self._flushing = False
            flushed.set()

    def _writer(self) -> anyio.CapacityLimiter:
        """A thread of our own: ledger commits never queue behind other `to_thread` work."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return self._limiter

    def _count(self, batch: Sequence[_Pending]) -> None:
        self.stats.writes += len(batch)
        self.stats.transactions += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))


def _commit(ledger: Ledger, batch: list[WriteItem]) -> list[BaseException | None]:
    """Commit `batch` at once; if that fails, item by item so only the culprits fail.

    Runs in a worker thread. Returns one error (or None) per item.
    """
    try:
        ledger.write(batch)
    except (sqlite3.Error, StateError, ValueError, TypeError):
        if len(batch) == 1:
            raise
        return [_commit_one(ledger, item) for item in batch]
    return [None] * len(batch)


def _commit_one(ledger: Ledger, item: WriteItem) -> BaseException | None:
    try:
        ledger.write([item])
    except (sqlite3.Error, StateError, ValueError, TypeError) as exc:
        return exc
    return None
