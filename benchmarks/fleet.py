"""Fleet benchmark: how fast does `ontap-rekey run` rotate a simulated fleet, and at what cost.

Starts the simulated fleet as `--sim-processes` separate `ontap-rekey simulate` processes on
loopback (`benchmarks/harness.py`: clusters sharded over them; with `--tls` every cluster
serves HTTPS, as every real cluster does; every rekey job lasts `--job-seconds`), runs
`ontap-rekey run` as another separate process on the merged inventory, and prints:

- wall: spawn to exit of the `run` process;
- the bound LB = max(max over clusters of ceil(targets_c / per_cluster),
  ceil(targets / concurrency)) x job_duration (the global limit counts too), and
  efficiency = LB / wall (LB assumes no wave barriers: measure it with `--waves 100%`);
  with any other `--waves`, also the wave-aware bound and the efficiency against it;
- the orchestrator's CPU ms per target and peak RSS (the run process's own rusage, from
  `os.wait4`);
- requests per target, from the simulators' `GET /_sim/stats`;
- where the wall time went (`phases`, from the run's log lines): start-up (spawn to the
  first `discovery.started`), discovery (to the last `discovery.finished`), the plan (to the
  first `attempt.started`), the rotation (to the last `target.finished`), the reports (to
  the exit), and `overlap_s`, how long discovery and the rotation went on together (an
  overlapped run: `--yes`, one wave; `--plan-first` to measure without); and `rotation_efficiency` = LB / rotation, the rotation alone against the bound;
- where a slot's cycle loses time beyond its job (`cycle`, from the same lines, each as p50,
  p90, p99 and mean over the targets' first attempts): `answer_late_ms`, the POST's answer
  after the job's length, and `next_post_ms`, from an answer to the cluster's next POST;
- each simulator shard's CPU during the run, as a share of one core (`sim_busiest_share`):
  near 1.0 means the simulator, not the orchestrator, set the pace: add `--sim-processes`.

    .venv/bin/python benchmarks/fleet.py --clusters 250 --svms 40 --tls    # 10,000 targets
    .venv/bin/python benchmarks/fleet.py --clusters 250 --svms 40 --waves default
    .venv/bin/python benchmarks/fleet.py --clusters 2500 --svms 40 --tls   # 100,000 targets

`--profile FILE` wraps the run in `py-spy record` (must be installed) and writes a
flame graph / speedscope / raw file there.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import os
import sqlite3
import sys
import tempfile
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from harness import (  # the benchmarks folder is not a package
    BIN,
    ground_truth,
    raise_open_file_limit,
    request_counts,
    run_child,
    start_fleet,
)

SUMMARY = ("wall_s", "lower_bound_s", "efficiency", "cpu_ms_per_target",
           "requests_per_target", "peak_rss_mib", "sim_busiest_share")  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add_fleet_args(p)
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--waves", default="100%", help="'default' leaves the product's default")
    p.add_argument("--return-timeout", type=int, default=None)
    p.add_argument("--profile", type=Path, help="py-spy record the run into this file")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return p.parse_args(argv)


def add_fleet_args(p: argparse.ArgumentParser) -> None:
    """The options every fleet benchmark shares (fleet.py, peer.py)."""
    p.add_argument("--clusters", type=int, default=250)
    p.add_argument("--svms", type=int, default=40)
    p.add_argument("--job-seconds", type=float, default=2.0)
    p.add_argument("--per-cluster", type=int, default=4)
    p.add_argument("--tls", action="store_true", help="HTTPS to every cluster (a generated CA)")
    p.add_argument("--sim-processes", type=int, default=1,
                   help="shard the clusters over N simulator processes [1]")  # fmt: skip
    p.add_argument("--scenario", type=Path, help="extra faults (YAML); job_duration is set")
    p.add_argument("--workdir", type=Path, help="keep files here [a temporary folder]")
    p.add_argument("--plan-first", action="store_true", help="pass --plan-first to the run")


def run_orchestrator(
    args: argparse.Namespace, work: Path, inventory: Path, env: dict[str, str]
) -> dict[str, Any]:
    """`ontap-rekey run` as a child; wall time, CPU and peak RSS of that child alone."""
    command = [
        str(BIN), "run", str(inventory), "--yes",
        "--per-cluster", str(args.per_cluster), "--concurrency", str(args.concurrency),
        "--state", str(work / "state.db"), "--report-dir", str(work / "report"),
        "--log-file", str(work / "run.log.jsonl"), "--log-format", "json",
    ]  # fmt: skip
    if args.waves != "default":
        command += ["--waves", args.waves]
    if args.return_timeout is not None:
        command += ["--return-timeout", str(args.return_timeout)]
    if args.plan_first:
        command.append("--plan-first")
    if args.profile is not None:
        command = [
            str(Path(sys.executable).parent / "py-spy"), "record", "--rate", "50",
            "--format", {".json": "speedscope", ".txt": "raw"}.get(args.profile.suffix, "flamegraph"),
            "-o", str(args.profile), "--", *command,
        ]  # fmt: skip
    return run_child(command, env, work / "run.out", work / "run.err")


def bounds(
    work: Path, per_cluster: int, concurrency: int, job_s: float
) -> tuple[float, float, int, list[int]]:
    """(LB without waves, the wave-aware bound, targets, wave sizes), from the ledger.

    A wave cannot end before its busiest cluster's rounds of `per_cluster` jobs, nor
    before its rounds of `concurrency` jobs fleet-wide (the global limit: 100,000 targets
    under --concurrency 1000 are 100 rounds, 200 s of 2 s jobs, whatever the clusters)."""
    with sqlite3.connect(work / "state.db") as db:
        rows = db.execute("SELECT cluster, wave FROM targets").fetchall()

    def bound(counts: Counter[str]) -> float:
        busiest = max(math.ceil(n / per_cluster) for n in counts.values())
        return max(busiest, math.ceil(sum(counts.values()) / concurrency)) * job_s

    flat = bound(Counter(cluster for cluster, _ in rows))
    waves: dict[int, Counter[str]] = defaultdict(Counter)
    for cluster, wave in rows:
        waves[wave or 0][cluster] += 1
    aware = sum(bound(counts) for counts in waves.values())
    sizes = [sum(waves[w].values()) for w in sorted(waves)]
    return flat, aware, len(rows), sizes


PHASE_MARKS = ("discovery.started", "discovery.finished", "attempt.started", "target.finished")
CYCLE_MARKS = ("attempt.started", "attempt.submitted")


class RunLog:
    """What the benchmark reads from the run's JSON log lines, in one pass: the first and
    last time of each phase mark, and each target's first `attempt.started` and
    `attempt.submitted` (the POST's answer)."""

    def __init__(self, log_file: Path) -> None:
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.attempts: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        marks = set(PHASE_MARKS) | set(CYCLE_MARKS)
        with log_file.open(encoding="utf-8") as lines:
            for line in lines:
                event = next((mark for mark in marks if f'"event": "{mark}"' in line), None)
                if event is not None:
                    self._take(event, json.loads(line))

    def _take(self, event: str, fields: dict[str, Any]) -> None:
        at = datetime.fromisoformat(fields["timestamp"]).timestamp()
        self.first[event] = min(self.first.get(event, at), at)
        self.last[event] = max(self.last.get(event, at), at)
        if event in CYCLE_MARKS:
            self.attempts[(fields["cluster"], fields.get("svm") or "")].setdefault(event, at)


def phases(log: RunLog, started_at: float, wall: float) -> dict[str, float | None]:
    """Seconds of the run's wall in each phase, from its JSON log lines (None: no such line).

    An overlapped run (`run --yes`, one wave) starts rotating before the last cluster is
    discovered: `overlap_s` is how long the two went on together (the plan is then 0), and
    the phases add up to the wall plus `overlap_s`."""
    first, last = log.first, log.last
    marks = [started_at, first.get("discovery.started"), last.get("discovery.finished"),
             first.get("attempt.started"), last.get("target.finished"), started_at + wall]  # fmt: skip
    names = ("startup_s", "discovery_s", "plan_s", "rotation_s", "reports_s")
    spent: dict[str, float | None] = {
        name: None if begin is None or end is None else round(end - begin, 2)
        for name, begin, end in zip(names, marks, marks[1:], strict=False)
    }
    plan = spent["plan_s"]
    spent["overlap_s"] = None if plan is None else max(0.0, -plan)
    spent["plan_s"] = None if plan is None else max(0.0, plan)
    return spent


def cycles(log: RunLog, job_seconds: float) -> dict[str, dict[str, float] | None]:
    """Where a slot's cycle loses time beyond its job, over every target's first attempt:
    `answer_late_ms`, the POST's answer after its job's length (the request out, the
    simulator, the answer read: from `attempt.started`, logged once the intent is committed);
    `next_post_ms`, from an answer to the next `attempt.started` of the same cluster (the
    commits and the hand-over of the slot). Each as p50, p90, p99 and mean."""
    late: list[float] = []
    handover: list[float] = []
    by_cluster: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (cluster, _svm), seen in log.attempts.items():
        if CYCLE_MARKS[1] in seen:
            started, answered = seen[CYCLE_MARKS[0]], seen[CYCLE_MARKS[1]]
            late.append(answered - started - job_seconds)
            by_cluster[cluster].append((started, answered))
    for pairs in by_cluster.values():
        starts = sorted(started for started, _ in pairs)
        for _, answered in pairs:
            later = bisect.bisect_right(starts, answered)
            if later < len(starts):
                handover.append(starts[later] - answered)
    return {"answer_late_ms": _spread_ms(late), "next_post_ms": _spread_ms(handover)}


def _spread_ms(seconds: list[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    ordered = sorted(seconds)

    def at(share: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)

    mean = round(1000 * sum(ordered) / len(ordered), 1)
    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "mean": mean}


def machine_load() -> float:
    """The 1-minute load average when the measurement ended (2 cores, shared)."""
    return os.getloadavg()[0]


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One benchmark run in `work`: every number, as a dict."""
    fleet, env = start_fleet(args, work)
    with fleet:
        assert fleet.inventory is not None
        sim_before = fleet.cpu_seconds()
        result = run_orchestrator(args, work, fleet.inventory, env)
        sim_cpu = [b - a for a, b in zip(sim_before, fleet.cpu_seconds(), strict=True)]
        stats = fleet.stats()
    flat, aware, targets, sizes = bounds(work, args.per_cluster, args.concurrency, args.job_seconds)
    by_kind = request_counts(stats)
    truth = ground_truth(stats)
    report = json.loads((work / "report" / "report.json").read_text())
    wall = result["wall_s"]
    log = RunLog(work / "run.log.jsonl")
    spent = phases(log, result["started_at"], wall)
    rotation = spent["rotation_s"]
    return {
        "clusters": args.clusters,
        "targets": targets,
        "tls": args.tls,
        "waves": args.waves,
        "wave_sizes": sizes,
        "sim_processes": len(sim_cpu),
        "simulator_startup_s": round(fleet.startup_s, 2),
        "exit_code": result["exit_code"],
        "wall_s": round(wall, 2),
        "lower_bound_s": flat,
        "efficiency": round(flat / wall, 3),
        "wave_aware_bound_s": aware,
        "efficiency_wave_aware": round(aware / wall, 3),
        "phases": spent,
        "rotation_efficiency": round(flat / rotation, 3) if rotation else None,
        "cycle": cycles(log, args.job_seconds),
        "cpu_ms_per_target": round(1000 * result["cpu_s"] / max(targets, 1), 3),
        "cpu_s": round(result["cpu_s"], 2),
        "peak_rss_mib": round(result["peak_rss_mib"], 1),
        "requests_per_target": round(sum(by_kind.values()) / max(targets, 1), 3),
        "requests": dict(by_kind.most_common()),
        "sim_cpu_s": [round(c, 2) for c in sim_cpu],
        "sim_busiest_share": round(max(sim_cpu) / wall, 3),
        "sim_rekeyed": truth["rekeyed"],
        "sim_double_rekeys": truth["double_rekeys"],
        "sim_peak_per_cluster": truth["peak_per_cluster"],  # <= --per-cluster
        "sim_fleet_peak": truth["fleet_peak"],  # <= --concurrency, every shard's jobs together
        "report_totals": report["totals"],
        "load_average_1m": round(machine_load(), 2),
    }


def print_result(out: dict[str, Any], as_json: bool) -> None:
    """The summary first (what the issue's acceptance reads), then every detail."""
    if as_json:
        print(json.dumps(out))
        return
    print("  ".join(f"{key}={out[key]}" for key in SUMMARY))
    for key, value in out.items():
        print(f"{key:24} {value}")


def main() -> int:
    """Run the benchmark once and print its numbers."""
    args = parse_args()
    raise_open_file_limit()
    with tempfile.TemporaryDirectory(prefix="ontap-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if (work / "run.log.jsonl").exists():  # the run would append to it: wrong phases
            print(f"fleet.py: --workdir {work} holds an earlier run: give a fresh one",
                  file=sys.stderr)  # fmt: skip
            return 2
        out = measure(args, work)
        print_result(out, args.json)
        if args.workdir is None:
            print("(files in a temporary folder, removed; --workdir keeps them)", file=sys.stderr)
    return 0 if out["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
