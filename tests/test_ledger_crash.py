"""SIGKILL a writing process at random moments: the ledger stays consistent and complete.

The child prints each write after it returned (i.e. was committed); after the kill the
ledger must hold every printed write, pass `PRAGMA integrity_check`, have a target row
for every transition, show each batch whole (a row's attempts equal its last
transition's), and its lock must be free so that `resume` can take the run over.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.ledger.records import RunStatus
from orchestrator.ledger.store import Ledger
from tests.ledger_factories import active_runs, integrity_problems, make_run

TARGETS = 40

_CHILD = """
import sys, time
from pathlib import Path
import anyio
from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import TargetRow, Transition
from orchestrator.ledger.store import Ledger

path, mode, targets = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ledger = Ledger.open(path)
ledger.acquire("r1")
keys = [TargetKey("east", f"svm{n:03}") for n in range(targets)]

def item(key, attempt):
    state = TargetState.SUBMITTED
    row = TargetRow("r1", key, state=state, attempts=attempt, job_uuid=f"j{attempt}")
    return row, Transition("r1", key, time.time(), state, attempt, "crash.step")

def sync_loop():
    for attempt in range(1, 10**9):
        ledger.write([item(key, attempt) for key in keys])  # one batch: all or nothing
        print(f"* {attempt}", flush=True)

async def target_loop(writer, key):
    for attempt in range(1, 10**9):
        await writer.write(*item(key, attempt))
        print(f"{key} {attempt}", flush=True)

async def async_loop():
    async with AsyncLedger(ledger) as writer, anyio.create_task_group() as group:
        for key in keys:
            group.start_soon(target_loop, writer, key)

sync_loop() if mode == "sync" else anyio.run(async_loop)
"""


def _prepare(path: Path) -> None:
    with Ledger.open(path) as ledger:
        ledger.create_run(make_run("r1"))


def _run_and_kill(path: Path, mode: str, seed: int) -> dict[str, int]:
    """Start the child, SIGKILL it at a seeded random moment; the writes it reported."""
    rng = random.Random(seed)
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), mode, str(TARGETS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # it is writing now
    time.sleep(rng.uniform(0.0, 0.15))
    os.kill(proc.pid, signal.SIGKILL)
    reported: dict[str, int] = {}
    for line in [first, *proc.stdout.read().splitlines()]:
        if line.strip():
            target, attempt = line.split()
            reported[target] = max(reported.get(target, 0), int(attempt))
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return reported


def _assert_consistent(path: Path, reported: dict[str, int]) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = dict(conn.execute("SELECT cluster || '/' || svm, attempts FROM targets"))
        last = dict(
            conn.execute(
                "SELECT cluster || '/' || svm, MAX(attempt) FROM transitions GROUP BY cluster, svm"
            )
        )
    assert rows == last  # every transition has its row, and each write landed whole
    for target, attempt in reported.items():
        committed = min(rows.values(), default=0) if target == "*" else rows.get(target, 0)
        assert committed >= attempt, f"{target}: reported {attempt}, committed {committed}"


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_sigkill_never_loses_a_committed_write(tmp_path: Path, mode: str, seed: int) -> None:
    path = tmp_path / "ledger.db"
    _prepare(path)
    reported = _run_and_kill(path, mode, seed)
    assert reported, "the child committed nothing before the kill"
    _assert_consistent(path, reported)
    with Ledger.open(path) as ledger:
        assert integrity_problems(ledger.path) == []
        assert ledger.running_run() is None  # the kernel dropped the lock with the process
        assert [run.status for run in active_runs(ledger)] == [RunStatus.ACTIVE]
        ledger.acquire("r1")  # resume can take the run over
