"""What the fleet benchmarks share: a simulated fleet in N `ontap-rekey simulate` processes.

`SimulatedFleet.start(...)` splits `clusters` x `svms` into `processes` shards (cluster i
goes to shard i mod N, so every shard has the same load), writes one fleet file per shard
and starts `ontap-rekey simulate --fleet FILE [--tls] --write-inventory --ready-file` for
each. It then writes one inventory for the whole fleet (every shard's clusters, in fleet
order; with TLS one CA bundle holding every shard's CA) and merges the shards' ground
truths (`GET /_sim/stats`).

Why shards: a simulator process serves every request of its clusters on one core. When it
is busy most of the measured time, the benchmark measures the simulator, not the client.
`cpu_seconds()` reads each shard's CPU time from /proc so a benchmark can say whether a
shard was near a full core (`busiest_share`).
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestrator.simulator.fleet import peak_overlap

BIN = Path(sys.executable).parent / "ontap-rekey"
PASSWORD = "netapp-sim"
PASSWORD_ENV = "ONTAP_SIM_PASSWORD"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def raise_open_file_limit() -> None:
    """Children inherit it: 1,000 connections plus one listener per cluster."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def cluster_names(count: int) -> list[str]:
    """`c001`, ... as `ontap-rekey simulate --clusters` names them."""
    width = max(3, len(str(count)))
    return [f"c{i:0{width}d}" for i in range(1, count + 1)]


def write_scenario(path: Path, job_seconds: float, extra: Path | None = None) -> Path:
    """The given scenario (if any) with every rekey job lasting exactly `job_seconds`."""
    document: dict[str, Any] = {}
    if extra is not None:
        document = yaml.safe_load(extra.read_text()) or {}
    options = document.setdefault("options", {})
    options["job_duration"] = {"min_s": job_seconds, "max_s": job_seconds}
    path.write_text(yaml.safe_dump(document))
    return path


def start_fleet(args: Any, work: Path) -> tuple[SimulatedFleet, dict[str, str]]:
    """The fleet the shared fleet options describe (`fleet.add_fleet_args`: clusters, SVMs,
    job length, extra scenario, shards, TLS), started in `work`, and the environment that
    reaches it (the simulated clusters' password)."""
    env = {**os.environ, PASSWORD_ENV: PASSWORD}
    scenario = write_scenario(work / "scenario.yaml", args.job_seconds, args.scenario)
    fleet = SimulatedFleet.start(
        work, clusters=args.clusters, svms=args.svms, processes=args.sim_processes,
        scenario=scenario, tls=args.tls, env=env,
    )  # fmt: skip
    return fleet, env


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (fields 14 and 15 of /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Shard:
    index: int
    process: subprocess.Popen[bytes]
    ready: dict[str, Any]
    inventory: Path


@dataclass
class SimulatedFleet:
    """Running simulator shards and the inventory that reaches all of them."""

    work: Path
    tls: bool
    shards: list[Shard] = field(default_factory=list)
    inventory: Path | None = None
    ca_bundle: Path | None = None
    startup_s: float = 0.0

    @classmethod
    def start(
        cls,
        work: Path,
        *,
        clusters: int,
        svms: int,
        processes: int,
        scenario: Path,
        tls: bool,
        env: dict[str, str],
    ) -> SimulatedFleet:
        """Start every shard, wait for all of them, write the merged inventory."""
        fleet = cls(work, tls)
        started = time.perf_counter()
        names = cluster_names(clusters)
        groups = [names[i::processes] for i in range(max(1, min(processes, clusters)))]
        try:
            launched = [
                fleet._launch(i, group, svms, scenario, env) for i, group in enumerate(groups)
            ]
            fleet.shards = [fleet._wait_ready(*item) for item in launched]
            fleet._merge_inventories(names)
        except BaseException:
            fleet.stop()
            raise
        fleet.startup_s = time.perf_counter() - started
        return fleet

    def _launch(
        self, index: int, group: list[str], svms: int, scenario: Path, env: dict[str, str]
    ) -> tuple[int, subprocess.Popen[bytes], Path, Path]:
        fleet_file = self.work / f"fleet-{index}.yaml"
        document = {"defaults": {"svms": svms}, "clusters": [{"name": n} for n in group]}
        fleet_file.write_text(yaml.safe_dump(document))
        ready = self.work / f"ready-{index}.json"
        inventory = self.work / f"inventory-{index}.yaml"
        command = [
            str(BIN), "simulate", "--fleet", str(fleet_file), "--scenario", str(scenario),
            "--write-inventory", str(inventory), "--ready-file", str(ready),
        ]  # fmt: skip
        if self.tls:
            command.append("--tls")
        out = (self.work / f"sim-{index}.out").open("wb")
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        return index, process, ready, inventory

    def _wait_ready(
        self, index: int, process: subprocess.Popen[bytes], ready: Path, inventory: Path
    ) -> Shard:
        while not ready.exists():
            if process.poll() is not None:
                raise SystemExit(
                    f"simulator shard {index} exited with {process.returncode}: "
                    f"see {self.work}/sim-{index}.out"
                )
            time.sleep(0.05)
        return Shard(index, process, json.loads(ready.read_text()), inventory)

    def _merge_inventories(self, order: list[str]) -> None:
        """One inventory in fleet order; with TLS one bundle with every shard's CA."""
        documents = [yaml.safe_load(shard.inventory.read_text()) for shard in self.shards]
        by_name = {c["name"]: c for d in documents for c in d["clusters"]}
        defaults = documents[0]["defaults"]
        if self.tls:
            self.ca_bundle = self.work / "fleet-ca.pem"
            self.ca_bundle.write_text(
                "".join(Path(s.ready["ca_bundle"]).read_text() for s in self.shards)
            )
            defaults["tls"] = {"verify": True, "ca_bundle": str(self.ca_bundle)}
        merged = {"version": 1, "defaults": defaults, "clusters": [by_name[n] for n in order]}
        self.inventory = self.work / "inventory.yaml"
        self.inventory.write_text(yaml.safe_dump(merged, sort_keys=False))

    def urls(self) -> dict[str, str]:
        """cluster name -> base URL, every shard."""
        return {name: url for s in self.shards for name, url in s.ready["urls"].items()}

    def cpu_seconds(self) -> list[float]:
        """CPU seconds used so far by each shard."""
        return [proc_cpu_seconds(shard.process.pid) for shard in self.shards]

    def stats(self) -> dict[str, Any]:
        """Every shard's ground truth, merged (`clusters` and `svms` are keyed by name)."""
        merged: dict[str, Any] = {"clusters": {}, "svms": {}}
        spans: list[tuple[float, float]] = []
        context = ssl.create_default_context(cafile=str(self.ca_bundle)) if self.tls else None
        for shard in self.shards:
            with urllib.request.urlopen(
                shard.ready["stats_url"], timeout=300, context=context
            ) as response:
                document = json.loads(response.read())
            merged["clusters"].update(document["clusters"])
            merged["svms"].update(document["svms"])
            spans.extend((start, end) for start, end in document["rekey_spans"])
        merged["fleet"] = {"peak_concurrent_rekeys": peak_overlap(spans)}
        return merged

    def stop(self) -> None:
        """SIGTERM every shard and wait for it."""
        for shard in self.shards:
            if shard.process.poll() is None:
                shard.process.send_signal(signal.SIGTERM)
        for shard in self.shards:
            try:
                shard.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                shard.process.kill()

    def __enter__(self) -> SimulatedFleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_child(command: list[str], env: dict[str, str], out: Path, err: Path) -> dict[str, Any]:
    """Run `command` to its end: exit code, wall seconds, CPU seconds and peak RSS (MiB)
    of that child alone (`os.wait4`: its own rusage, with its waited-for descendants)."""
    started, started_at = time.perf_counter(), time.time()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen(command, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
    return {
        "exit_code": child.returncode,
        "wall_s": wall,
        "started_at": started_at,  # epoch seconds, to place the run's log lines in its wall
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
    }


def request_counts(stats: dict[str, Any]) -> Counter[str]:
    """`METHOD path status` -> count, over every cluster."""
    counts: Counter[str] = Counter()
    for cluster in stats["clusters"].values():
        for entry in cluster["requests"]:
            counts[f"{entry['method']} {entry['path']} {entry['status']}"] += entry["count"]
    return counts


def ground_truth(stats: dict[str, Any]) -> dict[str, int]:
    """Rekeyed SVMs, SVMs rekeyed more than once, the most rekey jobs one cluster ran at
    once, and the most the whole fleet ran at once (every shard's jobs together: the
    shards' monotonic clocks are the machine's one CLOCK_MONOTONIC)."""
    svms = stats["svms"].values()
    clusters = stats["clusters"].values()
    return {
        "rekeyed": sum(1 for s in svms if s["rekeys"]),
        "double_rekeys": sum(1 for s in svms if len(s["rekeys"]) > 1),
        "peak_per_cluster": max((c["peak_concurrent_rekeys"] for c in clusters), default=0),
        "fleet_peak": stats["fleet"]["peak_concurrent_rekeys"],
    }


def flat_bound(clusters: int, svms: int, per_cluster: int, job_s: float) -> float:
    """max over clusters of ceil(targets_c / per_cluster) x job duration (equal clusters)."""
    return math.ceil(svms / per_cluster) * job_s if clusters else 0.0
