"""The ledger for the anyio engine: committed writes, group commit, off the event loop.

`await ledger.write(row, transition)` returns only once the write is committed, so the
engine can follow the write-ahead discipline (commit the intent, then send the POST).

Group commit on a writer thread of its own: a writer queues its item and waits; the
thread takes everything queued, commits it in one transaction (one fsync), hands the
results back to the event loop in one callback, and takes the next batch at once. So N
concurrent writers cost a handful of transactions instead of N, every write still has a
caller awaiting it (nothing is ever buffered that a crash could lose after `write`
returned), and commits follow each other back to back. (Before, the next flush was led
by a writer woken on the loop, then handed to a worker thread: two trips through a busy
event loop between commits, while the queue grew; under load a write waited ~2 flushes
plus those trips, and two writes lie between a POST's answer and the cluster's next POST.)

`write_queued` queues a write without waiting for it (the caller awaits its commit
later): the thread commits in queue order, so whatever is queued after it lands in the
same transaction or a later one. The engine queues a read-back's VERIFYING row this way
before the target's slots go back: the next intent (awaited before its POST) cannot land
first, and the slots are not held for a commit.

The wait is shielded from cancellation: a cancelled caller's write still lands (it may
already be in a transaction, and the engine's record must not depend on who was
cancelled); the cancellation is delivered once the write is committed.

Besides the writes, every other ledger call of a run (the lock, the run's record and
status, its rows, the calibrations) is awaited here too, off the loop: this class
implements the engine's `RunStore` port (engine/store.py), and nothing of a run blocks
the event loop on SQLite or `flock`. Those calls run on the same writer thread, between
batches (one thread, so one malloc arena: the rows discovery adds and the writes' rows
share it, instead of growing one arena per thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import anyio

from orchestrator.core.settling import Calibration, CalibrationKind
from orchestrator.core.targets import TargetKey
from orchestrator.errors import StateError
from orchestrator.ledger.records import RunRecord, RunStatus, TargetRow, Transition
from orchestrator.ledger.store import Ledger, WriteItem

T = TypeVar("T")

IDLE_EXIT_S = 2.0  # a writer thread with nothing to do for this long ends (a new write
# starts another): no thread outlives an AsyncLedger nobody closed by more than this

SAVES_POLL_S = 0.005  # how often `aclose` looks whether the calibrations are saved (once a run)
THREAD_POLL_S = 0.001  # how often `aclose` looks whether the writer thread has ended

_INTERRUPTED = RuntimeError("the ledger flush was interrupted; the write may not have landed")


class _Pending:
    """One queued write and, once its batch is committed, its error (None: it landed)."""

    __slots__ = ("done", "error", "item")

    def __init__(self, item: WriteItem) -> None:
        self.item = item
        self.done = False
        self.error: BaseException | None = None


Save = tuple[Calibration, str | None]  # a calibration to save, and the run that learnt it


class _Batch:
    """The writes queued since the writer thread last took the queue, and what their
    writers wait on (set on the event loop once the batch's transaction has ended); the
    calibrations queued meanwhile ride in the same transaction (nobody waits for them)."""

    __slots__ = ("committed", "items", "loop", "saves")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.items: list[_Pending] = []
        self.saves: list[Save] = []
        self.committed = anyio.Event()
        self.loop = loop


class _Saves:
    """Calibrations to save on their own (no write was queued to carry them)."""

    __slots__ = ("saves",)

    def __init__(self, saves: list[Save]) -> None:
        self.saves = saves


class _Call:
    """Any other ledger call, awaited: its result or error, handed back on the loop."""

    __slots__ = ("done", "error", "func", "loop", "result")

    def __init__(self, func: Callable[[], Any], loop: asyncio.AbstractEventLoop) -> None:
        self.func, self.loop = func, loop
        self.done = anyio.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class QueuedWrite:
    """A write queued by `AsyncLedger.write_queued`: await `committed()` for its commit."""

    __slots__ = ("_committed", "_pending")

    def __init__(self, pending: _Pending, committed: anyio.Event) -> None:
        self._pending, self._committed = pending, committed

    async def committed(self) -> None:
        """Return once the write is committed (at once, without a trip through the event
        loop, when it already is); raise what its commit raised. Shielded as `write`."""
        pending = self._pending
        if not pending.done:
            try:
                await self._committed.wait()
            except BaseException:  # cancelled while it waited: the write lands all the same
                with anyio.CancelScope(shield=True):
                    await self._committed.wait()
                raise
        if pending.error is not None:
            raise pending.error


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
        self._lock = threading.Condition()  # the queue, the batches, the thread
        self._next: _Batch | None = None  # queued, not taken by the thread yet
        self._committing: _Batch | None = None  # taken, its transaction under way
        self._saves: list[Save] = []  # calibrations, saved with the next batch
        self._saving = False  # the writer thread is saving some
        self._save_error: BaseException | None = None  # raised by the next call
        self._thread: threading.Thread | None = None
        self._closing = False
        self._calls: list[_Call] = []  # awaited calls, run between batches

    @property
    def _queue(self) -> list[_Pending]:
        """The writes queued and not yet taken by the writer thread."""
        return self._next.items if self._next is not None else []

    async def write(self, row: TargetRow, transition: Transition | None = None) -> None:
        """Upsert `row` and append `transition`; return once both are committed.

        Raises what the commit raised (e.g. sqlite3.IntegrityError for a transition whose
        target was never recorded); other writers of the same batch are not affected.
        """
        self._raise_save_error()
        pending = _Pending((row, transition))
        committed = self._enqueue(pending)
        try:
            await committed.wait()
        except BaseException:  # cancelled while it waited: the write lands all the same
            with anyio.CancelScope(shield=True):
                await committed.wait()
            raise
        if pending.error is not None:
            raise pending.error

    def write_queued(self, row: TargetRow, transition: Transition | None = None) -> QueuedWrite:
        """Queue the write of `row` and `transition` now and return at once; await the
        result's `committed()` for its commit (and its error).

        Its place in the commit order is taken by this call: the writer thread commits in
        queue order, batch after batch, so every write queued after it (an intent among
        them) is committed in the same transaction or a later one, never before it. (When
        a batch fails, its items are retried one by one, in order: a culprit fails alone.)
        A crash may lose a queued write that was not awaited, but only with everything
        queued after it. The engine queues a VERIFYING row this way before the target's
        slots go back (engine/procedure.py), and awaits it before the target's next write.
        """
        self._raise_save_error()
        pending = _Pending((row, transition))
        return QueuedWrite(pending, self._enqueue(pending))

    def _enqueue(self, pending: _Pending) -> anyio.Event:
        """Queue a write for the writer thread (started if none runs); what to wait on."""
        with self._lock:
            batch = self._next
            if batch is None:
                batch = self._next = _Batch(asyncio.get_running_loop())
            batch.items.append(pending)
            self._wake_thread()
            return batch.committed

    def _wake_thread(self) -> None:
        """(With `_lock` held.) The writer thread looks at the queue (started if none runs)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="ontap-rekey-ledger", daemon=True
            )
            self._thread.start()
        else:
            self._lock.notify()

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        """Commit batch after batch (a calibration when no write waits) until closed, or
        idle for `IDLE_EXIT_S`."""
        try:
            while self._work_once():
                pass
        except BaseException:  # not a thread for dead: the next write starts another
            with self._lock:
                self._thread = None
            raise

    def _work_once(self) -> bool:
        """Commit the next batch or save a calibration; False once the thread may end.
        (A function of its own: its locals, the batch's rows among them, go when it
        returns, not when the thread takes the next batch, maybe seconds later.)"""
        work = self._take()
        if work is None:
            return False
        if isinstance(work, _Saves):
            self._save(work.saves)
        elif isinstance(work, _Call):
            self._run_call(work)
        else:
            self._commit_batch(work)
        return True

    def _run_call(self, call: _Call) -> None:
        try:
            call.result = call.func()
        except Exception as exc:  # the caller raises it
            call.error = exc
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            call.loop.call_soon_threadsafe(call.done.set)

    def _commit_batch(self, batch: _Batch) -> None:
        try:
            errors, saved = _commit(self.ledger, [p.item for p in batch.items], batch.saves)
        except Exception as exc:  # handed to each writer of the batch
            errors, saved = [exc] * len(batch.items), False
        except BaseException:  # never leave a writer waiting
            self._hand_back(batch, [_INTERRUPTED] * len(batch.items))
            raise
        self._hand_back(batch, errors)
        if not saved and batch.saves:  # the batch failed: they go on their own
            self._save(batch.saves)
        elif batch.saves:
            with self._lock:
                self._saving = False

    def _take(self) -> _Batch | _Call | _Saves | None:
        """The next work: the queued writes first (a POST waits for its intent), with every
        calibration queued so far in their transaction; then a call; then calibrations
        alone. So a calibration lands with the next commit, never behind a busy queue."""
        with self._lock:
            while self._next is None and not self._calls and not self._saves:
                idle = self._closing or not self._lock.wait(IDLE_EXIT_S)
                if idle and self._next is None and not self._calls and not self._saves:
                    self._thread = None
                    return None
            if self._next is None and self._calls:
                return self._calls.pop(0)
            saves, self._saves = self._saves, []
            self._saving = bool(saves)
            if self._next is None:
                return _Saves(saves)
            batch, self._next = self._next, None
            batch.saves = saves
            self._committing = batch
            return batch

    def _save(self, saves: list[Save]) -> None:
        try:
            self.ledger.write([], saves)
        except Exception as exc:  # the next call raises it (see `save_calibration`)
            with self._lock:
                self._save_error = self._save_error or exc
        finally:
            with self._lock:
                self._saving = False

    def _hand_back(self, batch: _Batch, errors: list[BaseException | None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            batch.loop.call_soon_threadsafe(self._committed, batch, errors)

    def _committed(self, batch: _Batch, errors: list[BaseException | None]) -> None:
        """On the event loop: every writer of the batch learns its result."""
        for pending, error in zip(batch.items, errors, strict=True):
            pending.done, pending.error = True, error
        self._count(batch.items)
        with self._lock:
            if self._committing is batch:
                self._committing = None
        batch.committed.set()

    # -- the rest ------------------------------------------------------------------------

    async def save_calibration(self, calibration: Calibration, run_id: str | None = None) -> None:
        """Record a cluster's job calibration: queued for the writer thread, which saves
        it in the transaction of the next batch of writes (or alone when none is queued;
        `aclose` waits for it); returns at once.

        Not awaited to its commit, unlike a write: losing it (a crash in the milliseconds
        before it lands) only costs proofs of absence, never safety (the settle then
        cannot rule a job out). Saved alone and awaited, each was a transaction of its own
        (an fsync, ~3 ms here): a cluster's first POST answers (two saves per cluster, 500
        at 250 clusters, in the first rounds) waited behind all of them before their
        VERIFYING commits. The calibrations are saved in the order they were learnt; an
        error saving one is raised by the next write or save (the run ends `interrupted`,
        as before)."""
        self._raise_save_error()
        with self._lock:
            self._saves.append((calibration, run_id))
            self._wake_thread()

    def _raise_save_error(self) -> None:
        if self._save_error is not None:
            with self._lock:
                error, self._save_error = self._save_error, None
            if error is not None:
                raise error

    # -- the rest of the engine's RunStore port: each call on a worker thread ------------

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
        """`func(*args)` on the writer thread, between batches: SQLite and `flock` never
        block the loop. Not cancellable once queued (as `anyio.to_thread.run_sync`)."""
        call = _Call(partial(func, *args), asyncio.get_running_loop())
        with self._lock:
            self._calls.append(call)
            self._wake_thread()
            thread = self._thread
        with anyio.CancelScope(shield=True):  # a cancel reaches the caller's next checkpoint
            await call.done.wait()
            if self._closing:  # a call after `aclose` (the run's status, its lock): the
                await _ended(thread)  # thread it started is gone when it returns
        if call.error is not None:
            raise call.error
        result: T = call.result
        return result

    async def aclose(self) -> None:
        """Wait until every queued write is committed and every calibration saved, and the
        writer thread has ended. The ledger stays usable: a later call starts a thread
        that ends once it is idle, before that call returns."""
        with anyio.CancelScope(shield=True):
            while (batch := self._unfinished()) is not None:
                await batch.committed.wait()
            while self._saves_pending():
                await anyio.sleep(SAVES_POLL_S)
            with self._lock:
                self._closing = True  # for good: a thread started later ends once idle
                self._lock.notify()
                thread = self._thread
            await _ended(thread)

    def _unfinished(self) -> _Batch | None:
        with self._lock:
            return self._next or self._committing

    def _saves_pending(self) -> bool:
        with self._lock:
            return bool(self._saves) or self._saving

    async def __aenter__(self) -> AsyncLedger:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _count(self, batch: Sequence[_Pending]) -> None:
        self.stats.writes += len(batch)
        self.stats.transactions += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))


async def _ended(thread: threading.Thread | None) -> None:
    """Wait until `thread` has ended, not just been told to: the report phase forks its
    writer only while no other thread runs."""
    while thread is not None and thread.is_alive():
        await anyio.sleep(THREAD_POLL_S)


def _commit(
    ledger: Ledger, batch: list[WriteItem], saves: list[Save]
) -> tuple[list[BaseException | None], bool]:
    """Commit `batch` and `saves` at once; if that fails, the items one by one so only the
    culprits fail (the saves are then not saved: the caller saves them on their own).

    Runs in the writer thread. Returns one error (or None) per item, and whether the saves
    were saved.
    """
    try:
        if saves:
            ledger.write(batch, saves)
        else:
            ledger.write(batch)
    except (sqlite3.Error, StateError, ValueError, TypeError):
        if len(batch) == 1:
            if not saves:
                raise
            return [_commit_one(ledger, batch[0])], False
        return [_commit_one(ledger, item) for item in batch], False
    return [None] * len(batch), True


def _commit_one(ledger: Ledger, item: WriteItem) -> BaseException | None:
    try:
        ledger.write([item])
    except (sqlite3.Error, StateError, ValueError, TypeError) as exc:
        return exc
    return None
