"""Benchmark: committed ledger writes from many concurrent anyio tasks.

    .venv/bin/python benchmarks/ledger_writes.py [--writes 20000] [--tasks 1000] [--db PATH]
    .venv/bin/python benchmarks/ledger_writes.py --baseline   # the same tasks, no ledger

Each task owns one target and moves it through `writes / tasks` states, awaiting each
write (as the engine does: commit, then act). Prints writes/s, the number of transactions
(group commit), the event loop's maximum stall, measured by a ticker task that sleeps
1 ms at a time and records how late it wakes up, and the process's CPU per write (the
loop and the writer thread). `--baseline` runs the same tasks against a writer that only
yields to the loop: the stall it shows is the tasks' own work (1,000 tasks woken at
once), the difference is what the ledger adds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.lowlevel

from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import RunMode, RunRecord, TargetRow, Transition
from orchestrator.ledger.store import Ledger

TICK_S = 0.001
STATES = (TargetState.INTENT, TargetState.SUBMITTED, TargetState.VERIFYING, TargetState.DONE)


@dataclass
class Ticker:
    """Measures how late the event loop wakes a 1 ms sleeper."""

    lateness: list[float] = field(default_factory=list)

    async def run(self, stop: anyio.Event) -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await anyio.sleep(TICK_S)
            self.lateness.append(time.perf_counter() - before - TICK_S)


class NullWriter(AsyncLedger):
    """The baseline: a write that commits nothing and only yields to the event loop."""

    async def write(self, row: TargetRow, transition: Transition | None = None) -> None:
        await anyio.lowlevel.checkpoint()
        self.stats.writes += 1


async def _target_task(ledger: AsyncLedger, row: TargetRow, writes: int) -> None:
    for attempt in range(writes):
        state = STATES[attempt % len(STATES)]
        row = TargetRow(
            row.run_id, row.key, state=state, attempts=attempt, job_uuid=f"job-{attempt}"
        )
        step = Transition(row.run_id, row.key, time.time(), state, attempt, "bench.write")
        await ledger.write(row, step)


def _prepare(ledger: Ledger, tasks: int) -> list[TargetRow]:
    run_id = ledger.new_run_id()
    record = RunRecord(run_id, RunMode.RUN, "bench.yaml", "0" * 64, {}, "bench@host", time.time())
    ledger.create_run(record)
    rows = [TargetRow(run_id, TargetKey(f"c{i // 50:03}", f"svm{i:05}")) for i in range(tasks)]
    ledger.add_targets(rows)
    return rows


async def _bench(db: Path, writes: int, tasks: int, baseline: bool) -> None:
    with Ledger.open(db) as ledger:
        rows = _prepare(ledger, tasks)
        async_ledger = NullWriter(ledger) if baseline else AsyncLedger(ledger)
        ticker, stop = Ticker(), anyio.Event()
        started, cpu_started = time.perf_counter(), time.process_time()
        async with anyio.create_task_group() as outer:
            outer.start_soon(ticker.run, stop)
            async with anyio.create_task_group() as group:
                for row in rows:
                    group.start_soon(_target_task, async_ledger, row, writes // tasks)
            elapsed = time.perf_counter() - started
            stop.set()
        await async_ledger.aclose()
        cpu = time.process_time() - cpu_started
        _report(async_ledger, ticker, elapsed, "baseline: no ledger" if baseline else str(db))
        print(f"cpu           {cpu:.2f} s = {cpu * 1e6 / max(async_ledger.stats.writes, 1):.1f} us "
              "per write (the process: the loop and the writer thread)")  # fmt: skip


def _report(ledger: AsyncLedger, ticker: Ticker, elapsed: float, db: str) -> None:
    stats = ledger.stats
    late = sorted(ticker.lateness) or [0.0]
    p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
    print(f"ledger        {db}")
    print(
        f"writes        {stats.writes} in {elapsed:.2f} s = {stats.writes / elapsed:,.0f} writes/s"
    )
    print(
        f"transactions  {stats.transactions} "
        f"(mean batch {stats.writes / max(stats.transactions, 1):.0f}, "
        f"largest {stats.largest_batch})"
    )
    print(
        f"loop stall    max {late[-1] * 1000:.1f} ms, p99 {p99 * 1000:.2f} ms, "
        f"median {statistics.median(late) * 1000:.2f} ms over {len(late)} ticks"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=20_000)
    parser.add_argument("--tasks", type=int, default=1_000)
    parser.add_argument("--db", type=Path, help="ledger file (default: a temporary one)")
    parser.add_argument("--baseline", action="store_true", help="the same tasks, no ledger")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        db = args.db or Path(scratch) / "bench.db"
        anyio.run(_bench, db, args.writes, args.tasks, args.baseline)


if __name__ == "__main__":
    main()
