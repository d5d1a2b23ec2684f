"""AsyncLedger: committed on return, group commit, shielded from cancellation."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.core.settling import Calibration
from orchestrator.core.targets import TargetState
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import TargetRow
from orchestrator.ledger.store import Ledger
from tests.ledger_factories import key, make_run, open_ledger, step

pytestmark = pytest.mark.anyio


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path) as opened:
        opened.create_run(make_run("r1"))
        yield opened


@pytest.fixture
async def writer(ledger: Ledger) -> AsyncIterator[AsyncLedger]:
    async with AsyncLedger(ledger) as async_ledger:
        yield async_ledger


def _committed_state(path: Path, target: str) -> str | None:
    """The target's state as a fresh connection (another process) sees it."""
    cluster, svm = target.split("/")
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT state FROM targets WHERE cluster = ? AND svm = ?", (cluster, svm)
        ).fetchone()
    return None if row is None else str(row[0])


def _rows(count: int) -> list[TargetRow]:
    return [TargetRow("r1", key(f"east/svm{n:04}")) for n in range(count)]


async def test_a_write_is_committed_when_it_returns(writer: AsyncLedger, ledger: Ledger) -> None:
    """The write-ahead discipline: after `await write`, another connection sees it."""
    row = replace(TargetRow("r1", key("east/svm1")), state=TargetState.INTENT, attempts=1)
    await writer.write(row, step(row, "attempt.intent"))
    assert _committed_state(ledger.path, "east/svm1") == "intent"
    assert [t.event for t in ledger.transitions("r1")] == ["attempt.intent"]


async def test_concurrent_writers_share_transactions(writer: AsyncLedger, ledger: Ledger) -> None:
    """500 tasks x 4 writes land completely, in far fewer transactions than writes."""
    states = (TargetState.INTENT, TargetState.SUBMITTED, TargetState.VERIFYING, TargetState.DONE)

    async def move(row: TargetRow) -> None:
        for attempt, state in enumerate(states, start=1):
            row = replace(row, state=state, attempts=attempt)
            await writer.write(row, step(row))

    async with anyio.create_task_group() as group:
        for row in _rows(500):
            group.start_soon(move, row)
    assert {row.state for row in ledger.targets("r1")} == {TargetState.DONE}
    assert len(ledger.transitions("r1")) == 2000
    assert writer.stats.writes == 2000
    assert writer.stats.transactions < 100


async def test_a_cancelled_writer_still_lands(writer: AsyncLedger, ledger: Ledger) -> None:
    """Cancellation is delivered after the commit, never instead of it."""
    row = replace(TargetRow("r1", key("east/svm1")), state=TargetState.INTENT)
    reached_after_write = False
    with anyio.CancelScope() as scope:
        scope.cancel()
        await writer.write(row, step(row))
        reached_after_write = True
    assert scope.cancelled_caught
    assert not reached_after_write
    assert _committed_state(ledger.path, "east/svm1") == "intent"


async def test_writers_cancelled_mid_flush_all_land(writer: AsyncLedger, ledger: Ledger) -> None:
    """Cancel a task group while a transaction is in flight: every started write lands."""
    started: list[str] = []

    async def write_one(row: TargetRow) -> None:
        started.append(str(row.key))
        await writer.write(row, step(row))

    async with anyio.create_task_group() as group:
        for row in _rows(200):
            group.start_soon(write_one, row)
        while not writer.stats.transactions:  # the first flush is done; others queue
            await anyio.sleep(0)
        group.cancel_scope.cancel()
    committed = {str(row.key) for row in ledger.targets("r1")}
    assert committed == set(started)
    assert len(ledger.transitions("r1")) == len(started)


async def test_a_writer_cancelled_behind_a_flush_lands_before_the_cancel_reaches_it(
    writer: AsyncLedger, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer queued behind a flush in progress (it waits without a shielded scope of its
    own) and cancelled there stays until its own write is committed, then is cancelled."""
    entered, gate = threading.Event(), threading.Event()
    real_write = ledger.write

    def held_write(batch: list[Any]) -> None:
        entered.set()
        gate.wait(30)
        real_write(batch)

    monkeypatch.setattr(ledger, "write", held_write)
    first = replace(TargetRow("r1", key("east/svm1")), state=TargetState.INTENT)
    second = replace(TargetRow("r1", key("east/svm2")), state=TargetState.INTENT)
    scope = anyio.CancelScope()
    progress: list[str] = []

    async def follower() -> None:
        with scope:
            try:
                await writer.write(second, step(second))
                progress.append("returned")
            finally:
                progress.append("ended")

    async with anyio.create_task_group() as group:
        group.start_soon(writer.write, first, step(first))
        while not entered.is_set():  # the first flush holds the writer's thread
            await anyio.sleep(0.001)
        group.start_soon(follower)
        while not writer._queue:  # the follower queued behind it
            await anyio.sleep(0.001)
        scope.cancel()
        await anyio.sleep(0.05)
        assert progress == []  # cancelled, and still waiting for its write
        assert _committed_state(ledger.path, "east/svm2") is None
        gate.set()
    assert progress == ["ended"]
    assert scope.cancelled_caught
    assert _committed_state(ledger.path, "east/svm2") == "intent"
    assert [t.event for t in ledger.transitions("r1")] == ["test.step"] * 2


async def test_a_failing_write_fails_only_its_writer(writer: AsyncLedger, ledger: Ledger) -> None:
    """A bad item in a group commit does not take its batch-mates down with it."""
    failures: list[BaseException] = []

    async def write_one(row: TargetRow) -> None:
        try:
            await writer.write(row, step(row))
        except sqlite3.IntegrityError as exc:
            failures.append(exc)

    ghost = TargetRow("no-such-run", key("east/ghost"))
    async with anyio.create_task_group() as group:
        for row in [*_rows(20), ghost, *_rows(40)[20:]]:
            group.start_soon(write_one, row)
    assert len(failures) == 1
    assert len(ledger.targets("r1")) == 40


async def test_aclose_waits_for_queued_writes(ledger: Ledger) -> None:
    async_ledger = AsyncLedger(ledger)
    async with anyio.create_task_group() as group:
        for row in _rows(50):
            group.start_soon(async_ledger.write, row)
        await anyio.sleep(0)
        await async_ledger.aclose()
        assert len(ledger.targets("r1")) == 50


def _calibration(cluster: str) -> Calibration:
    return Calibration(cluster, "rekey of {uuid}", False, f"job-{cluster}", f"cfg-{cluster}")


def _hold_first_write(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, calls: list[str]
) -> tuple[threading.Event, threading.Event]:
    """`ledger.write` blocks its first call until the gate opens; every transaction is
    noted in `calls`, in order, as what it wrote and saved (" + " within one)."""
    entered, gate = threading.Event(), threading.Event()
    real_write = ledger.write

    def held_write(batch: list[Any], calibrations: Sequence[Any] = ()) -> None:
        if not entered.is_set():
            entered.set()
            gate.wait(30)
        real_write(batch, calibrations)
        done = [f"write {row.key.svm}" for row, _ in batch]
        done += [f"save {calibration.cluster}" for calibration, _ in calibrations]
        calls.append(" + ".join(done))

    monkeypatch.setattr(ledger, "write", held_write)
    return entered, gate


async def _until(condition: Callable[[], object]) -> None:
    with anyio.fail_after(30):
        while not condition():
            await anyio.sleep(0.001)


async def test_the_next_batch_is_committed_while_the_event_loop_is_busy(
    writer: AsyncLedger, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches are committed back to back by the writer thread: a write queued behind a
    flush lands while the event loop cannot run (it used to wait for a writer woken on
    the loop to lead the next flush, so a busy loop delayed every commit)."""
    entered, gate = _hold_first_write(ledger, monkeypatch, [])
    first = replace(TargetRow("r1", key("east/svm1")), state=TargetState.INTENT)
    second = replace(TargetRow("r1", key("east/svm2")), state=TargetState.INTENT)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.write, first, step(first))
        await _until(entered.is_set)
        group.start_soon(writer.write, second, step(second))
        await _until(lambda: writer._queue)
        gate.set()
        deadline = time.monotonic() + 30
        while _committed_state(ledger.path, "east/svm2") is None and time.monotonic() < deadline:
            time.sleep(0.01)  # the event loop blocked: only the writer thread can commit
        assert _committed_state(ledger.path, "east/svm2") == "intent"


async def test_a_calibration_save_returns_at_once_and_aclose_waits_for_it(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A calibration is saved off the target's path (it is not awaited to its commit)
    and still lands before `aclose` returns."""
    calls: list[str] = []
    entered, gate = _hold_first_write(ledger, monkeypatch, calls)
    async_ledger = AsyncLedger(ledger)
    row = replace(TargetRow("r1", key("east/svm1")), state=TargetState.INTENT)
    async with anyio.create_task_group() as group:
        group.start_soon(async_ledger.write, row, step(row))
        await _until(entered.is_set)  # the writer thread is held in a commit
        with anyio.fail_after(5):
            await async_ledger.save_calibration(_calibration("east"), "r1")
        assert calls == []  # returned before anything was saved
        gate.set()
        await async_ledger.aclose()
        assert calls == ["write svm1", "save east"]
    assert ("aws", "external") in {
        (provider.value, operation.value) for provider, operation in ledger.calibrations()["east"]
    }


async def test_queued_calibrations_ride_in_the_next_batch_of_writes(
    writer: AsyncLedger, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calibrations queued while a commit runs are saved in the next batch's transaction,
    in the order learnt: no transaction (no fsync) of their own before the next write, and
    never left behind a busy queue of writes (a crash loses at most what one commit would)."""
    calls: list[str] = []
    entered, gate = _hold_first_write(ledger, monkeypatch, calls)
    first = replace(TargetRow("r1", key("east/svm1")), state=TargetState.INTENT)
    second = replace(TargetRow("r1", key("east/svm2")), state=TargetState.INTENT)
    async with anyio.create_task_group() as group:
        group.start_soon(writer.write, first, step(first))
        await _until(entered.is_set)
        for cluster in ("c1", "c2", "c3"):
            await writer.save_calibration(_calibration(cluster), "r1")
        group.start_soon(writer.write, second, step(second))
        await _until(lambda: writer._queue)
        gate.set()
    await writer.aclose()
    assert calls == ["write svm1", "write svm2 + save c1 + save c2 + save c3"]
    assert set(ledger.calibrations()) == {"c1", "c2", "c3"}


async def test_an_error_saving_a_calibration_is_raised_by_the_next_call(
    writer: AsyncLedger, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = ledger.write

    def broken(batch: Sequence[Any], calibrations: Sequence[Any] = ()) -> None:
        if calibrations:
            raise sqlite3.OperationalError("disk I/O error")
        real_write(batch)

    monkeypatch.setattr(ledger, "write", broken)
    await writer.save_calibration(_calibration("east"), "r1")
    await writer.aclose()  # saved (or failed) by now
    row = TargetRow("r1", key("east/svm1"))
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        await writer.write(row, step(row))
    await writer.write(row, step(row))  # raised once
    assert _committed_state(ledger.path, "east/svm1") == "pending"


async def test_calibrations_of_a_batch_that_fails_are_saved_on_their_own(
    writer: AsyncLedger, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose transaction fails (here: the row of a run that does not exist) takes
    its calibrations down with it; they are then saved alone, not lost."""
    calls: list[str] = []
    entered, gate = _hold_first_write(ledger, monkeypatch, calls)
    first = replace(TargetRow("r1", key("east/svm1")), state=TargetState.INTENT)
    ghost = TargetRow("no-such-run", key("east/ghost"))
    failures: list[BaseException] = []

    async def write_ghost() -> None:
        try:
            await writer.write(ghost, step(ghost))
        except sqlite3.IntegrityError as exc:
            failures.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(writer.write, first, step(first))
        await _until(entered.is_set)  # the next batch gathers behind this commit
        await writer.save_calibration(_calibration("east"), "r1")
        group.start_soon(write_ghost)
        await _until(lambda: writer._queue)
        gate.set()
    await writer.aclose()
    assert len(failures) == 1
    assert calls == ["write svm1", "save east"]  # the ghost's batch failed, the save did not
    assert "east" in ledger.calibrations()


async def test_aclose_returns_once_the_writer_thread_has_ended(writer: AsyncLedger) -> None:
    """The report phase forks a writer only while no other thread runs: the ledger's
    thread must be gone, not just told to go, when the run's `aclose` returns."""
    row = TargetRow("r1", key("east/svm1"))
    await writer.write(row, step(row))
    assert "ontap-rekey-ledger" in {thread.name for thread in threading.enumerate()}
    await writer.aclose()
    assert "ontap-rekey-ledger" not in {thread.name for thread in threading.enumerate()}


async def test_a_call_after_aclose_leaves_no_thread_behind(writer: AsyncLedger) -> None:
    """A run closes the ledger's run record and lock after `aclose`: those calls start a
    thread again, and it is gone when they return (else the report phase cannot fork)."""
    await writer.aclose()
    assert await writer.new_run_id()
    assert "ontap-rekey-ledger" not in {thread.name for thread in threading.enumerate()}


async def test_a_queued_write_is_committed_before_every_write_queued_after_it(
    writer: AsyncLedger, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`write_queued` takes its place in the commit order when called: a write queued
    after it (awaited at once) lands in the same transaction or a later one, never
    before it, whether or not the writer thread was busy. (The engine relies on it: a
    VERIFYING row queued before the slots go back lands before the next target's intent.)"""
    calls: list[str] = []
    entered, gate = _hold_first_write(ledger, monkeypatch, calls)
    rows = [replace(row, state=TargetState.INTENT) for row in _rows(4)]
    async with anyio.create_task_group() as group:
        group.start_soon(writer.write, rows[0], step(rows[0]))
        await _until(entered.is_set)  # the writer thread is held in a commit
        queued = writer.write_queued(rows[1], step(rows[1]))
        group.start_soon(writer.write, rows[2], step(rows[2]))
        await _until(lambda: len(writer._queue) == 2)
        assert [pending.item[0].key.svm for pending in writer._queue] == ["svm0001", "svm0002"]
        gate.set()
    assert calls == ["write svm0000", "write svm0001 + write svm0002"]
    await queued.committed()
    queued = writer.write_queued(rows[3], step(rows[3]))  # the thread idle: alone, then
    await writer.write(rows[0], step(rows[0], "again"))
    assert calls[2:] in (["write svm0003 + write svm0000"], ["write svm0003", "write svm0000"])
    assert [t.key.svm for t in ledger.transitions("r1")] == [
        "svm0000",
        "svm0001",
        "svm0002",
        "svm0003",
        "svm0000",
    ]


async def test_a_queued_write_returns_at_once_and_its_commit_is_awaited_later(
    writer: AsyncLedger, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`write_queued` does not wait for the commit; `committed()` does, and raises what
    the commit raised (a transition whose target was never recorded)."""
    entered, gate = _hold_first_write(ledger, monkeypatch, [])
    row = replace(TargetRow("r1", key("east/svm1")), state=TargetState.VERIFYING)
    with anyio.fail_after(5):
        queued = writer.write_queued(row, step(row))
    await _until(entered.is_set)
    assert _committed_state(ledger.path, "east/svm1") is None  # queued, not committed
    gate.set()
    await queued.committed()
    assert _committed_state(ledger.path, "east/svm1") == "verifying"
    ghost = TargetRow("r1", key("east/ghost"))
    failing = writer.write_queued(row, step(ghost))  # a transition of no recorded target
    with pytest.raises(sqlite3.IntegrityError):
        await failing.committed()
