"""CPU per request of the ONTAP client's HTTP path, variant against variant, over TLS.

    .venv/bin/python benchmarks/http_path.py [--requests 4000] [--variants all]

Starts one simulated cluster (`ontap-rekey simulate --tls`, its own process: its CPU is not
counted), then in this process sends `--requests` read-back calls (`GET aws-kms/{uuid}` with
the health fields and the SVM's key store, as verify does today), `--concurrency` at a time,
through `OntapClient` over the client `orchestrator.ontap.connect.build_http_client` builds,
and prints user CPU microseconds per request (best of `--repeat` interleaved rounds) for
each variant:

- `before`: the client as built before issue 16 (an auth flow per request, a cookie jar,
  httpcore);
- `httpcore`: the product's client over httpx's own transport (httpcore on anyio's TLS
  stream), as it was until the lean transport;
- `default`: the product as it is (httpx over `ontap/transport.py`: an asyncio protocol
  per connection, asyncio's TLS, httptools; the lean request path of `OntapHttpClient`:
  the URL built from the base URL's parsed form, headers once per body length, `send`
  straight to the transport, the response built already read);
- `httpx-layers`: the same transport with httpx's own request building, `send` (auth
  and redirect generators) and response reading, i.e. the lean path switched off;
- `uvloop`: the same on uvloop (anyio `backend_options={"use_uvloop": True}`);
- `aiohttp`: httpx over `httpx_aiohttp.AiohttpTransport` (aiohttp's connection pool);
- `orjson`: responses parsed with orjson instead of `json` (patched into httpx here).

Whether `sniffio` is installed matters a lot (httpcore imports it per lock and per shield:
a failing import walks sys.path every time): the line prints it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from harness import PASSWORD, PASSWORD_ENV, SimulatedFleet, write_scenario

from orchestrator.config.loader import load_inventory
from orchestrator.ontap import connect
from orchestrator.ontap import transport as transport_module
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.connect import DEFAULT_LIMITS, build_http_client, build_ssl_context

VARIANTS = ("before", "httpcore", "default", "httpx-layers", "uvloop", "aiohttp", "orjson")


async def workload(client: OntapClient, requests: int, concurrency: int) -> float:
    """CPU seconds for `requests` read-back requests (half aws-kms, half key store)."""
    configs = await client.list_aws_kms()
    svms = [c.svm_name or "-" for c in configs]
    counter = iter(range(requests // 2))

    async def worker() -> None:
        for i in counter:
            config = configs[i % len(configs)]
            await client.get_aws_kms(config.uuid)
            await client.list_key_stores(svm=svms[i % len(svms)])

    before = resource.getrusage(resource.RUSAGE_SELF)
    async with anyio.create_task_group() as group:
        for _ in range(concurrency):
            group.start_soon(worker)
    after = resource.getrusage(resource.RUSAGE_SELF)
    # User time only: the system time of a loopback send includes delivering the bytes to
    # the simulator's socket (the kernel's work for both ends), the same for every variant.
    return after.ru_utime - before.ru_utime


def make_client(spec: Any, variant: str) -> OntapClient:
    transport: httpx.AsyncBaseTransport | None = None
    if variant == "before":
        http = httpx.AsyncClient(
            base_url=spec.base_url, auth=httpx.BasicAuth(spec.auth.username, PASSWORD),
            verify=build_ssl_context(spec), timeout=httpx.Timeout(60.0),
            headers={"Accept": "application/json"}, follow_redirects=False, trust_env=False,
        )  # fmt: skip
        return OntapClient(spec.name, http)
    if variant == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = AiohttpTransport(verify=build_ssl_context(spec))
    if variant == "httpcore":
        transport = httpx.AsyncHTTPTransport(verify=build_ssl_context(spec), limits=DEFAULT_LIMITS)
    http = build_http_client(spec, timeout=httpx.Timeout(60.0), transport=transport)
    if variant == "httpx-layers":
        http._lean_ok = False  # type: ignore[attr-defined]  # httpx's own send
    return OntapClient(spec.name, http)


def lean_off() -> Callable[[], None]:
    """httpx builds every request and reads every response itself; returns the undo."""
    saved = connect._LEAN_URLS, transport_module._LEAN_RESPONSES
    connect._LEAN_URLS = transport_module._LEAN_RESPONSES = False

    def undo() -> None:
        connect._LEAN_URLS, transport_module._LEAN_RESPONSES = saved

    return undo


def patch_orjson() -> Callable[[], None]:
    """httpx's Response.json through orjson; returns the undo."""
    import orjson

    original = httpx.Response.json

    def fast_json(self: httpx.Response, **kwargs: Any) -> Any:
        return orjson.loads(self.content)

    httpx.Response.json = fast_json  # type: ignore[method-assign]

    def undo() -> None:
        httpx.Response.json = original  # type: ignore[method-assign]

    return undo


def measure(spec: Any, variant: str, args: argparse.Namespace) -> float:
    undo = {"orjson": patch_orjson, "httpx-layers": lean_off}.get(variant, lambda: lambda: None)()

    async def once() -> float:
        client = make_client(spec, variant)
        try:
            await workload(client, 200, args.concurrency)  # warm: connections, caches
            return await workload(client, args.requests, args.concurrency)
        finally:
            await client.aclose()

    options = {"use_uvloop": True} if variant == "uvloop" else {}
    try:
        return anyio.run(once, backend="asyncio", backend_options=options)
    finally:
        undo()


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--requests", type=int, default=4000)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--variants", default="all", help=f"comma-separated of {','.join(VARIANTS)}")
    args = p.parse_args()
    variants = VARIANTS if args.variants == "all" else tuple(args.variants.split(","))
    env = {**os.environ, PASSWORD_ENV: PASSWORD}
    os.environ[PASSWORD_ENV] = PASSWORD
    with tempfile.TemporaryDirectory(prefix="ontap-http-") as tmp:
        work = Path(tmp)
        scenario = write_scenario(work / "scenario.yaml", 0.1)
        with SimulatedFleet.start(
            work, clusters=1, svms=40, processes=1, scenario=scenario, tls=True, env=env
        ) as fleet:
            assert fleet.inventory is not None
            spec = load_inventory(fleet.inventory).clusters[0]
            sniffio = importlib.util.find_spec("sniffio") is not None
            print(f"sniffio installed: {sniffio}; load average {os.getloadavg()[0]:.2f}")
            best = dict.fromkeys(variants, float("inf"))
            for _ in range(args.repeat):  # rounds interleave the variants: load drifts
                for variant in variants:
                    best[variant] = min(best[variant], measure(spec, variant, args))
            for variant in variants:
                cpu = best[variant]
                print(f"{variant:10} {1e6 * cpu / args.requests:8.1f} us user CPU per request")


if __name__ == "__main__":
    main()
