"""The rotation's first round in miniature: TLS handshakes, full against resumed.

    .venv/bin/python benchmarks/tls_handshakes.py [--clusters 250] [--burst 4] [--repeat 2]

A server process (forked) listens for `--clusters` clusters on 127.0.0.1, each with its
own certificate and server context (its own ticket keys), from a generated CA (`FleetTls`,
the simulator's: ECDSA P-256). In this process, one `ClusterTransport` per cluster opens a
first connection (discovery's), then `--burst` requests go to every cluster at once while
that connection is busy, so `--burst - 1` new connections per cluster are opened at the
same moment, as round 1's POSTs do. Printed per mode, alternated `--repeat` times: the
burst's wall time, this process's CPU, the server's CPU, and the handshakes by kind (the
transports' `handshakes` counters). `full` uses a plain `ssl.create_default_context`
(no resumption), `resumed` the product's `resuming_context`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

from orchestrator.ontap.transport import ClusterTransport, resuming_context
from orchestrator.simulator.tls import FleetTls

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def serve(contexts: list[ssl.SSLContext], ports_file: Path) -> None:
    """The server process: one listener per context; `{}` to every request."""

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(ANSWER)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        ports = []
        for context in contexts:
            server = await asyncio.start_server(on_connection, "127.0.0.1", 0, ssl=context)
            ports.append(server.sockets[0].getsockname()[1])
        ports_file.write_text(" ".join(map(str, ports)))
        await asyncio.sleep(3600)

    asyncio.run(main())


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def burst(mode: str, ca: Path, ports: list[int], size: int, server: int) -> str:
    context = (
        resuming_context(str(ca))
        if mode == "resumed"
        else ssl.create_default_context(cafile=str(ca))
    )
    limits = httpx.Limits(max_connections=size + 2, max_keepalive_connections=size + 2)
    transports = [ClusterTransport(ssl_context=context, limits=limits) for _ in ports]
    clients = [
        httpx.AsyncClient(transport=t, base_url=f"https://127.0.0.1:{p}")
        for t, p in zip(transports, ports, strict=True)
    ]
    await asyncio.gather(*(client.get("/") for client in clients))  # discovery's connection
    server_before, cpu_before, wall_before = process_cpu(server), time.process_time(), time.time()
    await asyncio.gather(*(client.get("/") for client in clients for _ in range(size)))
    wall = time.time() - wall_before
    cpu, server_cpu = time.process_time() - cpu_before, process_cpu(server) - server_before
    handshakes: Counter[str] = Counter()
    for transport in transports:
        handshakes.update(transport.handshakes)
    for client in clients:
        await client.aclose()
    return (
        f"{mode:8} burst wall {wall:5.2f} s  client CPU {cpu:5.2f} s  server CPU "
        f"{server_cpu:5.2f} s  handshakes {dict(sorted(handshakes.items()))}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clusters", type=int, default=250)
    parser.add_argument("--burst", type=int, default=4, help="requests per cluster at once")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="tls-handshakes-"))
    fleet_tls = FleetTls(directory)
    contexts = [fleet_tls.server_context("127.0.0.1") for _ in range(args.clusters)]
    ports_file = directory / "ports"
    pid = os.fork()
    if pid == 0:
        serve(contexts, ports_file)
        os._exit(0)
    try:
        while not ports_file.exists():
            time.sleep(0.05)
        ports = [int(port) for port in ports_file.read_text().split()]
        print(f"load {os.getloadavg()[0]:.2f}; {args.clusters} clusters x {args.burst} at once")
        for _ in range(args.repeat):
            for mode in ("full", "resumed"):
                line = asyncio.run(burst(mode, fleet_tls.ca_pem_path, ports, args.burst, pid))
                print(line, flush=True)
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
