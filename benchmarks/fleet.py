"""Fleet benchmark: how fast does `ontap-rekey run` rotate a simulated fleet, and at what cost.

Starts `ontap-rekey simulate` as a separate process on loopback (a generated fleet whose
rekey jobs all take `--job-seconds`), runs `ontap-rekey run` as another separate process on
the inventory it writes, and prints:

- targets, clusters, the run's wall time (spawn to exit of the `run` process);
- LB = max over clusters of ceil(targets_c / per_cluster) x job_duration, and
  efficiency = LB / wall (LB assumes no wave barriers: measure it with `--waves 100%`);
- with any other `--waves`, also the wave-aware bound (the sum over waves of each wave's
  own bound, waves read back from the ledger) and the efficiency against it;
- the orchestrator's CPU seconds per target (getrusage(RUSAGE_CHILDREN) around the run
  process) and peak RSS (ru_maxrss of the waited-for children);
- requests per target, from the simulator's `GET /_sim/stats`.

    .venv/bin/python benchmarks/fleet.py --clusters 250 --svms 40          # 10,000 targets
    .venv/bin/python benchmarks/fleet.py --clusters 250 --svms 40 --waves default
    .venv/bin/python benchmarks/fleet.py --clusters 2500 --svms 40         # 100,000 targets

`--profile FILE` wraps the run in `py-spy record` (must be installed) and writes a
flame graph / speedscope file there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "ontap-rekey"
PASSWORD = "netapp-sim"


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clusters", type=int, default=250)
    p.add_argument("--svms", type=int, default=40)
    p.add_argument("--job-seconds", type=float, default=2.0)
    p.add_argument("--per-cluster", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--waves", default="100%", help="'default' leaves the product's default")
    p.add_argument("--return-timeout", type=int, default=None)
    p.add_argument("--scenario", type=Path, help="extra faults (YAML); job_duration is set")
    p.add_argument("--workdir", type=Path, help="keep files here [a temporary folder]")
    p.add_argument("--profile", type=Path, help="py-spy record the run into this file")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    return p.parse_args()


def raise_open_file_limit() -> None:
    """Children inherit it: 1,000 connections plus one listener per cluster."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def write_scenario(args: argparse.Namespace, path: Path) -> None:
    """The given scenario (if any) with every job lasting exactly --job-seconds."""
    import yaml  # the project's own dependency

    document: dict[str, Any] = {}
    if args.scenario is not None:
        document = yaml.safe_load(args.scenario.read_text()) or {}
    options = document.setdefault("options", {})
    options["job_duration"] = {"min_s": args.job_seconds, "max_s": args.job_seconds}
    path.write_text(yaml.safe_dump(document))


def start_simulator(
    args: argparse.Namespace, work: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], dict[str, Any], float]:
    """Spawn `ontap-rekey simulate`; wait for its ready file."""
    ready = work / "ready.json"
    command = [
        str(BIN), "simulate", "--clusters", str(args.clusters), "--svms", str(args.svms),
        "--write-inventory", str(work / "inventory.yaml"), "--ready-file", str(ready),
        "--scenario", str(work / "scenario.yaml"),
    ]  # fmt: skip
    started = time.perf_counter()
    sim = subprocess.Popen(
        command, env=env, stdout=(work / "sim.out").open("wb"), stderr=subprocess.STDOUT
    )
    while not ready.exists():
        if sim.poll() is not None:
            raise SystemExit(f"the simulator exited with {sim.returncode}: see {work}/sim.out")
        time.sleep(0.05)
    return sim, json.loads(ready.read_text()), time.perf_counter() - started


def sim_stats(url: str) -> dict[str, Any]:
    """The simulator's ground truth."""
    with urllib.request.urlopen(url, timeout=120) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def run_orchestrator(args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """`ontap-rekey run` as a child; wall time, CPU and peak RSS of that child alone."""
    command = [
        str(BIN), "run", str(work / "inventory.yaml"), "--yes",
        "--per-cluster", str(args.per_cluster), "--concurrency", str(args.concurrency),
        "--state", str(work / "state.db"), "--report-dir", str(work / "report"),
        "--log-file", str(work / "run.log.jsonl"), "--log-format", "json",
    ]  # fmt: skip
    if args.waves != "default":
        command += ["--waves", args.waves]
    if args.return_timeout is not None:
        command += ["--return-timeout", str(args.return_timeout)]
    if args.profile is not None:
        command = [
            str(Path(sys.executable).parent / "py-spy"), "record", "--rate", "50",
            "--format", {".json": "speedscope", ".txt": "raw"}.get(args.profile.suffix, "flamegraph"),
            "-o", str(args.profile), "--", *command,
        ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        command,
        env=env,
        stdout=(work / "run.out").open("wb"),
        stderr=(work / "run.err").open("wb"),
        check=False,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of RUSAGE_CHILDREN is the largest of the waited-for children (KiB on
    # Linux); the simulator has not been waited for yet, so this is the run's own peak.
    return {"exit_code": done.returncode, "wall_s": wall, "cpu_s": cpu,
            "peak_rss_mib": after.ru_maxrss / 1024}  # fmt: skip


def bounds(work: Path, per_cluster: int, job_s: float) -> tuple[float, float, int, list[int]]:
    """(LB without waves, the wave-aware bound, targets, wave sizes), from the ledger."""
    with sqlite3.connect(work / "state.db") as db:
        rows = db.execute("SELECT cluster, wave FROM targets").fetchall()
    per_cluster_count = Counter(cluster for cluster, _ in rows)
    flat = max(math.ceil(n / per_cluster) for n in per_cluster_count.values()) * job_s
    waves: dict[int, Counter[str]] = defaultdict(Counter)
    for cluster, wave in rows:
        waves[wave or 0][cluster] += 1
    aware = sum(
        max(math.ceil(n / per_cluster) for n in counts.values()) * job_s
        for counts in waves.values()
    )
    sizes = [sum(waves[w].values()) for w in sorted(waves)]
    return flat, aware, len(rows), sizes


def main() -> int:
    """Run the benchmark once and print its numbers."""
    args = parse_args()
    raise_open_file_limit()
    env = {**os.environ, "ONTAP_SIM_PASSWORD": PASSWORD}
    with tempfile.TemporaryDirectory(prefix="ontap-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        write_scenario(args, work / "scenario.yaml")
        sim, ready, startup = start_simulator(args, work, env)
        try:
            result = run_orchestrator(args, work, env)
            stats = sim_stats(ready["stats_url"])
        finally:
            sim.send_signal(signal.SIGTERM)
            sim.wait(timeout=60)
        flat, aware, targets, sizes = bounds(work, args.per_cluster, args.job_seconds)
        requests = sum(
            entry["count"]
            for cluster in stats["clusters"].values()
            for entry in cluster["requests"]
        )
        by_kind: Counter[str] = Counter()
        for cluster in stats["clusters"].values():
            for entry in cluster["requests"]:
                by_kind[f"{entry['method']} {entry['path']} {entry['status']}"] += entry["count"]
        rekeyed = sum(1 for s in stats["svms"].values() if s["rekeys"])
        double = sum(1 for s in stats["svms"].values() if len(s["rekeys"]) > 1)
        report = json.loads((work / "report" / "report.json").read_text())
        out = {
            "clusters": args.clusters,
            "targets": targets,
            "waves": args.waves,
            "wave_sizes": sizes,
            "simulator_startup_s": round(startup, 2),
            "exit_code": result["exit_code"],
            "wall_s": round(result["wall_s"], 2),
            "lower_bound_s": flat,
            "efficiency": round(flat / result["wall_s"], 3),
            "wave_aware_bound_s": aware,
            "efficiency_wave_aware": round(aware / result["wall_s"], 3),
            "cpu_ms_per_target": round(1000 * result["cpu_s"] / max(targets, 1), 3),
            "cpu_s": round(result["cpu_s"], 2),
            "peak_rss_mib": round(result["peak_rss_mib"], 1),
            "requests_per_target": round(requests / max(targets, 1), 3),
            "requests": dict(by_kind.most_common()),
            "sim_rekeyed": rekeyed,
            "sim_double_rekeys": double,
            "report_totals": report["totals"],
        }
        if args.json:
            print(json.dumps(out))
        else:
            for key, value in out.items():
                print(f"{key:24} {value}")
        if args.workdir is None:
            print("(files in a temporary folder, removed; --workdir keeps them)", file=sys.stderr)
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
