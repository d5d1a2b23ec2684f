"""The ceiling of a rotation split over N engine processes, measured before building one.

Issue 16 named "a second rotation process" (clusters sharded, the global limit split) as
the lever left for 250 x 40. Before anyone builds the coordination (one failure budget,
waves, signals, one ledger), this measures what the split can give at best: N independent
`ontap-rekey run` processes started at the same moment, each over every N-th cluster of
one simulated fleet (its own ledger, `--concurrency` divided by N, nothing shared), against
one process over the whole fleet, on the same simulator. No coordination costs anything
here, so the wall of the N-way split bounds from below what a coordinated one could do.

Prints one JSON line per measurement (`--parts 1 2 1 2` alternates them): the wall from the
first spawn to the last exit, the efficiency against `fleet.py`'s bound for the whole
fleet (a split whose parts differ in size has a higher bound of its own), the engines' CPU
per target (every process's own rusage added up), each process's wall, the simulators'
CPU, and the ground truth (every target rekeyed once, peaks within the limits).

    .venv/bin/python benchmarks/split_engines.py --clusters 250 --svms 40 --tls --parts 1 2 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from fleet import add_fleet_args
from harness import (  # the benchmarks folder is not a package
    BIN,
    flat_bound,
    ground_truth,
    raise_open_file_limit,
    start_fleet,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (the fleet options of `fleet.py`, then the split's)."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add_fleet_args(p)
    p.add_argument("--concurrency", type=int, default=1000, help="split evenly over the parts")
    p.add_argument("--parts", type=int, nargs="+", default=[1, 2], help="one measurement each")
    p.add_argument("--json", action="store_true", help="(the output is always JSON lines)")
    return p.parse_args(argv)


def split_inventory(inventory: Path, parts: int, work: Path) -> list[Path]:
    """Every `parts`-th cluster of `inventory` in a file of its own (same defaults)."""
    document = yaml.safe_load(inventory.read_text())
    paths = []
    for index in range(parts):
        path = work / f"inventory-part-{index}.yaml"
        part = document | {"clusters": document["clusters"][index::parts]}
        path.write_text(yaml.safe_dump(part))
        paths.append(path)
    return paths


def launch(
    args: argparse.Namespace, inventory: Path, work: Path, concurrency: int, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """One `ontap-rekey run` over one part, its files under `work` (as fleet.py's run)."""
    name = inventory.stem
    command = [
        str(BIN), "run", str(inventory), "--yes", "--waves", "100%",
        "--per-cluster", str(args.per_cluster), "--concurrency", str(concurrency),
        "--state", str(work / f"{name}.db"), "--report-dir", str(work / f"{name}-report"),
        "--log-file", str(work / f"{name}.log.jsonl"), "--log-format", "json",
    ]  # fmt: skip
    with (work / f"{name}.out").open("wb") as out, (work / f"{name}.err").open("wb") as err:
        return subprocess.Popen(command, env=env, stdout=out, stderr=err)


def wait_all(processes: list[subprocess.Popen[bytes]], started: float) -> dict[str, Any]:
    """Reap every process (`os.wait4`: each one's own rusage): exit codes, CPU, walls."""
    pending = {p.pid: p for p in processes}
    codes, walls, cpu = [], [], 0.0
    while pending:
        pid, status, usage = os.wait4(-1, 0)
        if pending.pop(pid, None) is None:
            continue  # not one of ours
        codes.append(os.waitstatus_to_exitcode(status))
        walls.append(round(time.perf_counter() - started, 2))
        cpu += usage.ru_utime + usage.ru_stime
    for process in processes:
        process.returncode = 0  # already reaped: tell Popen
    return {"exit_codes": codes, "each_wall_s": walls, "cpu_s": cpu}


def measure(args: argparse.Namespace, parts: int, work: Path) -> dict[str, Any]:
    """One measurement: a fresh simulated fleet, `parts` runs over it at once."""
    work.mkdir(parents=True, exist_ok=True)
    fleet, env = start_fleet(args, work)
    with fleet:
        assert fleet.inventory is not None
        inventories = split_inventory(fleet.inventory, parts, work)
        sim_before = fleet.cpu_seconds()
        started = time.perf_counter()
        share = max(1, args.concurrency // parts)
        processes = [launch(args, inv, work, share, env) for inv in inventories]
        reaped = wait_all(processes, started)
        wall = time.perf_counter() - started
        sim_cpu = [b - a for a, b in zip(sim_before, fleet.cpu_seconds(), strict=True)]
        truth = ground_truth(fleet.stats())
    targets = args.clusters * args.svms
    bound = max(
        flat_bound(args.clusters, args.svms, args.per_cluster, args.job_seconds),
        -(-targets // args.concurrency) * args.job_seconds,  # the global limit's rounds
    )
    return {
        "parts": parts,
        "concurrency_each": share,
        "wall_s": round(wall, 2),
        "lower_bound_s": bound,
        "efficiency": round(bound / wall, 3),
        "cpu_ms_per_target": round(1000 * reaped["cpu_s"] / max(targets, 1), 3),
        "each_wall_s": reaped["each_wall_s"],
        "exit_codes": reaped["exit_codes"],
        "sim_cpu_s": [round(c, 2) for c in sim_cpu],
        **{f"sim_{key}": value for key, value in truth.items()},
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> int:
    """Each `--parts` in turn on a fresh fleet; exit 1 if a run failed or a rekey doubled."""
    args = parse_args()
    raise_open_file_limit()
    failed = False
    with tempfile.TemporaryDirectory(prefix="ontap-split-") as tmp:
        base = args.workdir or Path(tmp)
        for index, parts in enumerate(args.parts):
            out = measure(args, parts, base / f"m{index}-parts{parts}")
            print(json.dumps(out), flush=True)
            failed |= any(out["exit_codes"]) or out["sim_double_rekeys"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
