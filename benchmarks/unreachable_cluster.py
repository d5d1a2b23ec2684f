"""Benchmark: an unreachable cluster and a locked-out cluster do not slow the rest (issue 4).

    .venv/bin/python benchmarks/unreachable_cluster.py [--clusters 10] [--svms 20]
        [--job 0.3] [--per-cluster 2] [--concurrency 64] [--repeat 2] [--hanging]

Two rotations over loopback sockets (`running_simulator`, in-process `execute_run`,
`--waves 100%`), each on a fresh fleet: N healthy clusters alone, then the same N plus
one cluster the scenario marks `unreachable` (its port is bound but never listens:
connections are refused) and one whose account has another password (`wrong_password`:
every login answers 401). Prints both wall times, the outcomes, and the failed logins on
the locked-out cluster (the engine must stop after the first 401: no account lockout).

The simulator's `unreachable` refuses connections at once. `--hanging` adds a third bad
cluster whose address accepts TCP connections and never answers (a hung management LIF,
or what a firewall that drops packets costs, up to the connect timeout): it shows what
the request timeout (`request_timeout_s`, 60 s) costs the rest of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from orchestrator.config.loader import load_inventory
from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.store import Ledger
from orchestrator.observe.logging import configure_logging
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import running_simulator


def _one_pass(args: argparse.Namespace, scratch: Path, name: str, bad: bool) -> dict[str, Any]:
    clusters = args.clusters + ((3 if args.hanging else 2) if bad else 0)
    spec = FleetSpec.generate(clusters, args.svms)
    faults: list[dict[str, Any]] = []
    if bad:
        faults = [
            {"kind": "unreachable", "cluster": spec.clusters[args.clusters].name},
            {"kind": "wrong_password", "cluster": spec.clusters[args.clusters + 1].name},
        ]
    job = {"min_s": args.job, "max_s": args.job}
    scenario = Scenario.model_validate({"options": {"job_duration": job}, "faults": faults})
    with running_simulator(spec, scenario, seed=1) as sim, contextlib.ExitStack() as stack:
        urls = dict(sim.urls)
        if bad and args.hanging:
            silent = stack.enter_context(socket.create_server(("127.0.0.1", 0), backlog=64))
            urls[spec.clusters[-1].name] = f"http://127.0.0.1:{silent.getsockname()[1]}"
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
            wiring = Wiring(AsyncLedger(ledger), handle_signals=False)
            started = time.perf_counter()
            result = anyio.run(execute_run, RunRequest(inventory, Selection(), options), wiring)
            wall = time.perf_counter() - started
        stats = sim.fleet.stats()
    assert result is not None
    per_cluster: dict[str, Counter[str]] = {}
    for row in result.rows:
        label = row.outcome or "-"
        if row.reason:
            label += f":{row.reason}"
        per_cluster.setdefault(row.key.cluster, Counter())[label] += 1
    healthy = [c.name for c in spec.clusters[: args.clusters]]
    return {
        "wall": wall,
        "healthy": sum((per_cluster.get(c, Counter()) for c in healthy), Counter()),
        "bad": {c.name: dict(per_cluster.get(c.name, {})) for c in spec.clusters[args.clusters :]},
        "failed_logins": {
            c.name: stats["clusters"][c.name]["failed_logins"]
            for c in spec.clusters[args.clusters :]
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clusters", type=int, default=10, help="healthy clusters")
    parser.add_argument("--svms", type=int, default=20)
    parser.add_argument("--job", type=float, default=0.3, help="job duration, seconds")
    parser.add_argument("--per-cluster", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2, help="pairs of passes")
    parser.add_argument(
        "--hanging", action="store_true", help="add a cluster that accepts and never answers"
    )
    args = parser.parse_args()
    os.environ.setdefault(PASSWORD_ENV, "netapp-sim")
    configure_logging(log_format="json", log_file=None, level="error")
    print(
        f"{args.clusters} healthy clusters x {args.svms} SVMs, job {args.job} s, "
        f"per-cluster {args.per_cluster}, concurrency {args.concurrency}, waves 100%"
    )
    walls: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="unreachable-") as tmp:
        for index in range(args.repeat):
            order = (False, True) if index % 2 == 0 else (True, False)
            for bad in order:
                result = _one_pass(args, Path(tmp), f"{index}-{bad}", bad)
                walls[bad].append(result["wall"])
                label = "healthy + bad clusters" if bad else "healthy only"
                line = f"{label:36} {result['wall']:6.2f} s  healthy {dict(result['healthy'])}"
                if bad:
                    line += f"  others {result['bad']}  failed logins {result['failed_logins']}"
                print(line)
    alone, mixed = statistics.median(walls[False]), statistics.median(walls[True])
    print(
        f"median wall  healthy only {alone:.2f} s, with the bad clusters {mixed:.2f} s "
        f"({(mixed - alone) / alone * 100:+.1f} %)"
    )


if __name__ == "__main__":
    main()
