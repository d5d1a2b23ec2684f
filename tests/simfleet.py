"""Test helpers: an in-process simulated fleet and a matching resolved inventory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from orchestrator.core.inventory import (
    BasicAuth,
    ClusterSpec,
    Inventory,
    RetryOverride,
    SvmEntry,
    TlsSettings,
)
from orchestrator.core.options import RunOptions
from orchestrator.engine.runner import RunResult
from orchestrator.simulator.app import SimulatorApp
from orchestrator.simulator.fleet import Fleet, FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.transport import SimulatorTransport

PASSWORD_ENV = "ONTAP_TEST_PASSWORD"

FAST = RunOptions(backoff_scale=0.001, retry_after_cap_s=0.01, waves="100%", request_timeout_s=0.5)
"""Real backoff, scaled down so a test's retries take milliseconds."""

FAST_JOBS = {"options": {"job_duration": {"min_s": 0.001, "max_s": 0.005}}}


def scenario(*faults: dict[str, Any], **options: Any) -> Scenario:
    """A scenario with fast jobs and these faults."""
    merged = {**FAST_JOBS["options"], **options}
    return Scenario.model_validate({"options": merged, "faults": list(faults)})


SOCKET_JOBS = {"job_duration": {"min_s": 0.01, "max_s": 0.03}}
"""Jobs of 10-30 ms: the options of the end-to-end tests over real sockets."""
FAST_SOCKET_JOBS = scenario(**SOCKET_JOBS)
"""The end-to-end tests' scenario: those jobs, no fault."""

Runner = Callable[..., Awaitable[RunResult]]
"""`run_sim(sim, selection=None, **options)` (tests/engine/conftest.py): a whole run."""

BASE_PORT = 20000

SIM_BASE = "http://127.0.0.1:20001"
"""Where the first simulated cluster answers (`Fleet.bind_default`)."""
SIM_AUTH = ("admin", "netapp-sim")
"""The simulator's default credentials."""


def sim_client(
    app: SimulatorApp, base: str = SIM_BASE, auth: tuple[str, str] | None = SIM_AUTH, **kwargs: Any
) -> httpx.AsyncClient:
    """An httpx client on the in-process simulator (logged in unless `auth=None`)."""
    return httpx.AsyncClient(transport=SimulatorTransport(app), base_url=base, auth=auth, **kwargs)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class SimFleet:
    fleet: Fleet
    app: SimulatorApp
    inventory: Inventory

    def transport(self) -> Callable[[ClusterSpec], httpx.AsyncBaseTransport]:
        return lambda _spec: SimulatorTransport(self.app)

    def rekeys(self) -> dict[str, int]:
        """Accepted rekeys per `cluster/svm`, from the simulator's ground truth."""
        return {name: len(entry["rekeys"]) for name, entry in self.fleet.stats()["svms"].items()}


def sim_fleet(
    clusters: int,
    svms: int,
    *,
    scenario: Scenario | None = None,
    key_id: str = "current",
    explicit: bool = False,
    per_cluster: int | None = None,
    password: str = "netapp-sim",
    retry: dict[str, RetryOverride] | None = None,
    seed: int = 7,
    svm_names: list[str] | None = None,
    versions: tuple[str, ...] = (),
) -> SimFleet:
    """A fleet of `clusters` x `svms` (or these `svm_names`) served in-process, and an
    inventory for it."""
    spec = FleetSpec.generate(clusters, svms, password=password, **_versions(versions))
    if svm_names is not None:
        spec = FleetSpec(clusters=[c.model_copy(update={"svms": svm_names}) for c in spec.clusters])
    fleet = Fleet(spec, scenario, seed)
    fleet.bind_default(BASE_PORT)
    specs = tuple(
        _cluster_spec(c.name, i, c.svms, key_id=key_id, explicit=explicit, per_cluster=per_cluster)
        for i, c in enumerate(spec.clusters, start=1)
    )
    inventory = Inventory(
        path=Path("inventory.yaml"), sha256="0" * 64, version=1, clusters=specs, retry=retry or {}
    )
    return SimFleet(fleet, SimulatorApp(fleet), inventory)


def _versions(versions: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {"versions": versions} if versions else {}


def _cluster_spec(
    name: str, index: int, svms: list[str], *, key_id: str, explicit: bool, per_cluster: int | None
) -> ClusterSpec:
    return ClusterSpec(
        name=name,
        base_url=f"http://127.0.0.1:{BASE_PORT + index}",
        auth=BasicAuth(username="admin", password_env=PASSWORD_ENV),
        tls=TlsSettings(),
        key_id=key_id,
        per_cluster=per_cluster,
        all_svms=not explicit,
        svms=tuple(SvmEntry(s, key_id) for s in svms) if explicit else (),
    )
