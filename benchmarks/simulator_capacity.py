"""Capacity of the simulator: one process, a big fleet, as many simple requests as it takes.

Starts `python -m orchestrator.simulator` (1,000 clusters x 50 SVMs by default) as a
separate process, waits for its ready file, then drives `GET /api/cluster` with basic auth
from client processes on loopback for a fixed time, spread across all clusters (each
worker keeps a connection alive for `--per-connection` requests, then moves on to another
cluster). Prints the start-up time, requests/s, latency percentiles, statuses, and the
simulator's RSS before and after the load.

    .venv/bin/python benchmarks/simulator_capacity.py                # the defaults
    .venv/bin/python benchmarks/simulator_capacity.py --client httpx # httpx.AsyncClient

The default client is a minimal keep-alive HTTP/1.1 client, so that on a small machine
the simulator, not the client, is what gets measured; `--client httpx` measures what the
orchestrator's own client stack gets.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

USERNAME = "admin"
PASSWORD = "netapp-sim"
AUTH = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--svms", type=int, default=50)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--concurrency", type=int, default=64, help="workers per process")
    parser.add_argument("--processes", type=int, default=1, help="client processes")
    parser.add_argument("--per-connection", type=int, default=50)
    parser.add_argument("--path", default="/api/cluster")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--versions", help="ONTAP versions of the clusters, round-robin")
    return parser.parse_args()


def start_simulator(
    args: argparse.Namespace, workdir: Path
) -> tuple[subprocess.Popen[bytes], dict[str, Any], float]:
    """Spawn the simulator; return it, its ready file's content and the start-up time."""
    ready = workdir / "ready.json"
    command = [
        sys.executable,
        "-m",
        "orchestrator.simulator",
        "--clusters",
        str(args.clusters),
        "--svms",
        str(args.svms),
        "--password",
        PASSWORD,
        "--ready-file",
        str(ready),
    ]
    if args.versions:
        command += ["--versions", args.versions]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    for line in process.stdout:  # the command prints "ready" once the ready file is written
        if line.startswith(b"simulator ready"):
            break
    else:
        raise SystemExit(f"the simulator exited with {process.wait()}")
    return process, json.loads(ready.read_text()), time.perf_counter() - started


def rss_mib(pid: int) -> float:
    """Resident set size of `pid` in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the load ---------------------------------------------------------------------------


async def raw_worker(
    targets: list[tuple[str, int]],
    start: int,
    args: argparse.Namespace,
    deadline: float,
    stats: dict[str, Any],
) -> None:
    """Keep-alive GETs with a hand-written HTTP/1.1 client; move to another cluster often."""
    index = start
    while time.perf_counter() < deadline:
        host, port = targets[index % len(targets)]
        index += 7919  # a prime stride: every cluster gets visited
        request = (
            f"GET {args.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: {AUTH}\r\nAccept: application/json\r\n\r\n"
        ).encode()
        reader, writer = await asyncio.open_connection(host, port)
        for _ in range(args.per_connection):
            if time.perf_counter() >= deadline:
                break
            sent = time.perf_counter()
            writer.write(request)
            status = await read_response(reader)
            stats["latencies"].append(time.perf_counter() - sent)
            stats["statuses"][status] += 1
        writer.close()


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response with a Content-Length body; return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = 0
    for line in lines[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def httpx_worker(
    targets: list[tuple[str, int]],
    start: int,
    args: argparse.Namespace,
    deadline: float,
    stats: dict[str, Any],
) -> None:
    """The same load through httpx.AsyncClient (one client per worker, keep-alive)."""
    import httpx

    index = start
    async with httpx.AsyncClient(auth=(USERNAME, PASSWORD)) as client:
        while time.perf_counter() < deadline:
            host, port = targets[index % len(targets)]
            index += 7919
            for _ in range(args.per_connection):
                if time.perf_counter() >= deadline:
                    break
                sent = time.perf_counter()
                response = await client.get(f"http://{host}:{port}{args.path}")
                stats["latencies"].append(time.perf_counter() - sent)
                stats["statuses"][response.status_code] += 1


async def load(
    targets: list[tuple[str, int]], args: argparse.Namespace, offset: int
) -> dict[str, Any]:
    """Run `concurrency` workers until the deadline; return latencies and statuses."""
    stats: dict[str, Any] = {"latencies": [], "statuses": Counter()}
    worker = raw_worker if args.client == "raw" else httpx_worker
    deadline = time.perf_counter() + args.duration
    await asyncio.gather(
        *(worker(targets, offset + i * 13, args, deadline, stats) for i in range(args.concurrency))
    )
    return stats


def client_process(
    targets: list[tuple[str, int]], args: argparse.Namespace, offset: int
) -> dict[str, Any]:
    """One client process (a process, so that the client is not the bottleneck)."""
    return asyncio.run(load(targets, args, offset))


# -- report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSide:
    """What the simulator process cost."""

    startup_s: float
    rss_idle_mib: float
    rss_loaded_mib: float
    cpu_s: float  # CPU seconds used during the load


def report(args: argparse.Namespace, results: list[dict[str, Any]], server: ServerSide) -> None:
    """Print the numbers."""
    latencies = sorted(x for r in results for x in r["latencies"])
    statuses: Counter[int] = Counter()
    for result in results:
        statuses.update(result["statuses"])
    total = len(latencies)
    q = statistics.quantiles(latencies, n=100) if total > 1 else [float("nan")] * 99
    print(f"fleet: {args.clusters} clusters x {args.svms} SVMs (one process)")
    print(f"start-up (spawn to all clusters listening): {server.startup_s:.1f} s")
    print(
        f"load: {args.client} client, {args.processes} process(es) x {args.concurrency} "
        f"workers, GET {args.path}, {args.duration:.0f} s"
    )
    print(f"requests: {total}, {total / args.duration:.0f} req/s")
    print(f"latency: p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms")
    print(f"statuses: {dict(sorted(statuses.items()))}")
    print(f"simulator CPU: {server.cpu_s / args.duration:.0%} of one core during the load")
    if server.cpu_s > 0 and total:
        print(
            f"simulator cost: {server.cpu_s * 1e6 / total:.0f} us CPU per request "
            f"(~{total / server.cpu_s:.0f} req/s per core when the clients keep up)"
        )
    print(
        f"simulator RSS: {server.rss_idle_mib:.0f} MiB idle, "
        f"{server.rss_loaded_mib:.0f} MiB after the load"
    )


def targets_of(ready: dict[str, Any]) -> list[tuple[str, int]]:
    """(host, port) of every reachable cluster in the ready file."""
    pairs = []
    for name, url in ready["urls"].items():
        if name not in ready["unreachable"]:
            host, port = url.split("://", 1)[1].rsplit(":", 1)
            pairs.append((host, int(port)))
    return pairs


def main() -> None:
    """Start the simulator, load it, print, stop it."""
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="sim-capacity-") as workdir:
        process, ready, startup_s = start_simulator(args, Path(workdir))
        try:
            pairs = targets_of(ready)
            rss_idle, cpu_before = rss_mib(process.pid), cpu_seconds(process.pid)
            offsets = [p * args.concurrency * 13 for p in range(args.processes)]
            with multiprocessing.Pool(args.processes) as pool:
                results = pool.starmap(client_process, [(pairs, args, o) for o in offsets])
            cpu_s = cpu_seconds(process.pid) - cpu_before
            report(args, results, ServerSide(startup_s, rss_idle, rss_mib(process.pid), cpu_s))
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
