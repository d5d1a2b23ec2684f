"""Benchmark: the ledger's share of the wall time of a whole rotation (issue 5: < 5 %).

    .venv/bin/python benchmarks/ledger_overhead.py [--clusters 50] [--svms 100] [--job 0.5]
        [--per-cluster 4] [--concurrency 200] [--repeat 1] [--simulator-process]

A fleet of `clusters x svms` targets is served on loopback sockets by `running_simulator`
(a background thread of this process); the rotation runs in-process through
`orchestrator.engine.runner.execute_run` with `--waves 100%`, twice per repeat, on a fresh
fleet each time: once with the real ledger (SQLite, WAL, group commit: every transition
committed before the action that depends on it), once with a writer that does nothing
(`Wiring.store`). Both passes still create the run and insert its target
rows (that bulk insert is timed separately and counted in the real pass's overhead).
The overhead is (real - null) / null of the wall time of `execute_run`; the time spent
committing (in the ledger's writer thread, off the event loop) is printed too.

With the simulator in this process, it and the engine share one GIL: the run is CPU-bound
and the numbers are noisy (a faster writer can even make the whole run slower, by letting
more requests pile onto the shared core). `--simulator-process` serves the fleet from
`python -m orchestrator.simulator` instead, so the engine has a core of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio

from orchestrator.config.loader import load_inventory
from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import TargetRow, Transition
from orchestrator.ledger.store import Ledger, WriteItem
from orchestrator.observe.logging import configure_logging
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import running_simulator


class NullWriter(AsyncLedger):
    """The baseline: a write that does nothing at all."""

    async def write(self, row: TargetRow, transition: Transition | None = None) -> None:
        return None


@dataclass
class Pass:
    wall_s: float
    outcomes: dict[str, int]
    writes: int
    transactions: int
    bulk_insert_s: float
    commit_s: float


@contextlib.contextmanager
def _fleet(args: argparse.Namespace, scratch: Path, name: str) -> Iterator[Mapping[str, str]]:
    """Serve the fleet; yield its URLs per cluster."""
    spec = FleetSpec.generate(args.clusters, args.svms)
    job = {"min_s": args.job, "max_s": args.job}
    if not args.simulator_process:
        scenario = Scenario.model_validate({"options": {"job_duration": job}})
        with running_simulator(spec, scenario, seed=1) as sim:
            yield sim.urls
        return
    scenario_file = scratch / f"{name}-scenario.yaml"
    scenario_file.write_text(json.dumps({"options": {"job_duration": job}}))  # JSON is YAML
    ready = scratch / f"{name}-ready.json"
    command = [
        sys.executable, "-m", "orchestrator.simulator", "--clusters", str(args.clusters),
        "--svms", str(args.svms), "--scenario", str(scenario_file), "--seed", "1",
        "--ready-file", str(ready),
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.DEVNULL) as proc:
        try:
            while not ready.exists():
                if proc.poll() is not None:
                    raise SystemExit(f"the simulator exited with {proc.returncode}")
                time.sleep(0.05)
            yield json.loads(ready.read_text())["urls"]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


def _one_pass(args: argparse.Namespace, scratch: Path, name: str, null: bool) -> Pass:
    spec = FleetSpec.generate(args.clusters, args.svms)
    writers: list[AsyncLedger] = []
    bulk, commits = [0.0], [0.0]

    with _fleet(args, scratch, name) as urls:
        inventory = load_inventory(
            write_inventory(scratch / f"{name}.yaml", spec, urls, ca_bundle=None)
        )
        options = RunOptions(
            concurrency=args.concurrency,
            per_cluster=args.per_cluster,
            per_cluster_explicit=True,
            waves="100%",
        )
        with Ledger.open(scratch / f"{name}.db") as ledger:
            add_targets = ledger.add_targets

            def timed_add_targets(rows: Sequence[TargetRow]) -> None:
                started = time.perf_counter()
                add_targets(rows)
                bulk[0] += time.perf_counter() - started

            write = ledger.write

            def timed_write(batch: Sequence[WriteItem]) -> None:  # in the writer thread
                started = time.perf_counter()
                write(batch)
                commits[0] += time.perf_counter() - started

            ledger.add_targets = timed_add_targets  # type: ignore[method-assign]
            ledger.write = timed_write  # type: ignore[method-assign]
            writers.append(NullWriter(ledger) if null else AsyncLedger(ledger))
            wiring = Wiring(writers[0], handle_signals=False)
            request = RunRequest(inventory, Selection(), options)
            started = time.perf_counter()
            result = anyio.run(execute_run, request, wiring)
            wall = time.perf_counter() - started
    assert result is not None
    outcomes: dict[str, int] = {}
    for row in result.rows:
        outcomes[row.outcome or "-"] = outcomes.get(row.outcome or "-", 0) + 1
    stats = writers[0].stats
    return Pass(wall, outcomes, stats.writes, stats.transactions, bulk[0], commits[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=50)
    parser.add_argument("--svms", type=int, default=100)
    parser.add_argument("--job", type=float, default=0.5, help="job duration, seconds")
    parser.add_argument("--per-cluster", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1, help="pairs of passes (real, null)")
    parser.add_argument(
        "--simulator-process", action="store_true", help="serve the fleet from a subprocess"
    )
    args = parser.parse_args()
    os.environ.setdefault(PASSWORD_ENV, "netapp-sim")
    configure_logging(log_format="json", log_file=None, level="warning")
    targets = args.clusters * args.svms
    print(
        f"{targets} targets ({args.clusters} x {args.svms}), job {args.job} s, "
        f"per-cluster {args.per_cluster}, concurrency {args.concurrency}, waves 100%, "
        f"simulator {'in a subprocess' if args.simulator_process else 'in this process'}"
    )
    real: list[float] = []
    null: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ledger-overhead-") as tmp:
        scratch = Path(tmp)
        for index in range(args.repeat):
            for is_null in (False, True) if index % 2 == 0 else (True, False):
                name = f"{'null' if is_null else 'real'}-{index}"
                result = _one_pass(args, scratch, name, is_null)
                (null if is_null else real).append(result.wall_s)
                label = "no-op ledger" if is_null else "real ledger "
                print(
                    f"{label}  {result.wall_s:7.2f} s  {result.outcomes}  "
                    f"writes {result.writes}, transactions {result.transactions}, "
                    f"commits {result.commit_s:.2f} s (writer thread), "
                    f"target rows inserted in {result.bulk_insert_s * 1000:.0f} ms"
                )
    r, n = statistics.median(real), statistics.median(null)
    print(f"median wall   real {r:.2f} s, no-op {n:.2f} s")
    print(f"ledger overhead  {(r - n) / n * 100:+.1f} % of the wall time (issue 5 wants < 5 %)")


if __name__ == "__main__":
    main()
