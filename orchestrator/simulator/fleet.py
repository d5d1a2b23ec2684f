"""The fleet: its definition (`FleetSpec`, from flags or a fleet file) and its live state.

A fleet file is YAML (documented in docs/simulator.md):

    defaults: {version: "9.14.1", nodes: 2, username: admin, password: netapp-sim}
    generate: {clusters: 3, svms: 5}        # optional: c001.. with svm01..
                                            # (versions: [...] round-robin, optional)
    clusters:                               # optional: explicit clusters
      - name: east1
        svms: [fin01, hr01]                 # or a count: svms: 4
        version: "9.11.1"
        include_cluster_scope: true
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.simulator.cluster import ClusterState
from orchestrator.simulator.policy import policy_for
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.timebase import Clock, Timebase

DEFAULT_USERNAME = "admin"
DEFAULT_PASSWORD = "netapp-sim"
DEFAULT_VERSION = "9.14.1"
DEFAULT_SEED = 0
KeyManager = Literal["aws", "azure", "gcp", "barbican"]


class ClusterDef(BaseModel):
    """One cluster of the fleet definition."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    svms: list[str]
    version: str = Field(DEFAULT_VERSION, pattern=r"^\d+\.\d+(\.\d+)?$")
    nodes: int = Field(2, ge=1, le=24)
    include_cluster_scope: bool = False
    username: str = DEFAULT_USERNAME
    password: str = DEFAULT_PASSWORD
    users: dict[str, str] = Field(default_factory=dict)  # extra accounts: name -> password
    tokens: list[str] = Field(default_factory=list)  # OAuth bearer tokens (9.14+)
    # SVM -> its cloud key manager (aws, azure, gcp, barbican); an SVM not named: aws
    key_managers: dict[str, KeyManager] = Field(default_factory=dict)

    @field_validator("svms", mode="before")
    @classmethod
    def _count_means_generated(cls, value: object) -> object:
        return svm_names(value) if isinstance(value, int) else value

    @field_validator("svms")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("duplicate SVM names")
        return value


def svm_names(count: int) -> list[str]:
    """`svm01`, `svm02`, ... (zero-padded to at least two digits)."""
    width = max(2, len(str(count)))
    return [f"svm{i:0{width}d}" for i in range(1, count + 1)]


def assign_key_managers(
    svms: Sequence[str], key_managers: Sequence[KeyManager]
) -> dict[str, KeyManager]:
    """Providers round-robin over SVMs; AWS ones are left out (AWS is the default)."""
    chosen = list(key_managers) or ["aws"]
    pairs = ((svm, chosen[i % len(chosen)]) for i, svm in enumerate(svms))
    return {svm: provider for svm, provider in pairs if provider != "aws"}


def cluster_names(count: int) -> list[str]:
    """`c001`, `c002`, ... (zero-padded to at least three digits)."""
    width = max(3, len(str(count)))
    return [f"c{i:0{width}d}" for i in range(1, count + 1)]


class FleetSpec(BaseModel):
    """What the fleet is: an ordered list of clusters with unique names."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    clusters: list[ClusterDef]

    @model_validator(mode="after")
    def _unique_names(self) -> FleetSpec:
        names = [c.name for c in self.clusters]
        if len(set(names)) != len(names):
            raise ValueError("duplicate cluster names")
        return self

    @classmethod
    def generate(
        cls,
        clusters: int,
        svms: int,
        *,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        versions: Sequence[str] = (DEFAULT_VERSION,),
        key_managers: Sequence[KeyManager] = ("aws",),
    ) -> FleetSpec:
        """`clusters` clusters `c001`.. with `svms` SVMs `svm01`.. each, one login; the
        `versions` go round-robin over the clusters (c001 the first, c002 the second...),
        the `key_managers` over each cluster's SVMs (svm01 the first, svm02 the second...)."""
        names = svm_names(svms)
        chosen = list(versions) or [DEFAULT_VERSION]
        providers = assign_key_managers(names, key_managers)
        return cls(
            clusters=[
                ClusterDef(
                    name=name,
                    svms=names,
                    version=chosen[i % len(chosen)],
                    username=username,
                    password=password,
                    key_managers=providers,
                )
                for i, name in enumerate(cluster_names(clusters))
            ]
        )

    @classmethod
    def from_yaml(cls, text: str) -> FleetSpec:
        """Parse a fleet file (safe YAML): `defaults`, `generate`, `clusters`."""
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise TypeError("a fleet file is a mapping")
        return cls.model_validate({"clusters": _expand(data)})


def _expand(data: dict[str, Any]) -> list[dict[str, Any]]:
    unknown = set(data) - {"defaults", "generate", "clusters"}
    if unknown:
        raise ValueError(f"unknown keys in fleet file: {sorted(unknown)}")
    defaults = dict(data.get("defaults") or {})
    entries: list[dict[str, Any]] = []
    generate = data.get("generate")
    if generate:
        unknown = set(generate) - {"clusters", "svms", "versions", "key_managers"}
        if unknown:
            raise ValueError(f"unknown keys in generate: {sorted(unknown)}")
        svms = svm_names(int(generate.get("svms", 1)))
        names = cluster_names(int(generate["clusters"]))
        versions = list(generate.get("versions") or [])
        key_managers = list(generate.get("key_managers") or [])
        for i, name in enumerate(names):
            entry: dict[str, Any] = {"name": name, "svms": svms}
            if versions:
                entry["version"] = versions[i % len(versions)]
            if key_managers:
                entry["key_managers"] = assign_key_managers(svms, key_managers)
            entries.append(entry)
    entries += list(data.get("clusters") or [])
    return [{**defaults, **entry} for entry in entries]


class Fleet:
    """The live simulation: one ClusterState per cluster, where each is bound, the clock.

    `clusters` keeps fleet order. The same spec, scenario and seed give the same uuids,
    key ids, job uuids and fault draws (for the same sequence of requests per target).
    """

    def __init__(
        self,
        spec: FleetSpec,
        scenario: Scenario | None = None,
        seed: int | None = None,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.spec = spec
        self.scenario = scenario or Scenario()
        self.seed = seed if seed is not None else (self.scenario.seed or DEFAULT_SEED)
        self.timebase = Timebase(clock, skew_s=self.scenario.options.clock_skew_s)
        self._addresses: dict[tuple[str, int], str] = {}
        self._build()

    def _build(self) -> None:
        self.clusters = [
            ClusterState(d, policy_for(self.scenario, d.name), self.seed, self.timebase)
            for d in self.spec.clusters
        ]
        self.by_name = {c.name: c for c in self.clusters}
        self._at = {addr: self.by_name[name] for addr, name in self._addresses.items()}

    def bind(self, name: str, host: str, port: int) -> None:
        """Record that cluster `name` is served at host:port."""
        if name not in self.by_name:
            raise KeyError(name)
        self._addresses[(host, port)] = name
        self._at[(host, port)] = self.by_name[name]

    def bind_default(self, base_port: int = 20000) -> None:
        """Bind cluster i (from 1) to 127.0.0.1:(base_port + i)."""
        for i, cluster in enumerate(self.clusters, start=1):
            self.bind(cluster.name, "127.0.0.1", base_port + i)

    def address_of(self, name: str) -> tuple[str, int] | None:
        """Where cluster `name` is bound, if it is."""
        return next((a for a, n in self._addresses.items() if n == name), None)

    def cluster_at(self, server: Any) -> ClusterState | None:
        """The cluster bound at an ASGI `scope["server"]` (host, port), if any."""
        if not server:
            return None
        return self._at.get((server[0], server[1]))

    def use_clock(self, clock: Clock) -> None:
        """Drive the simulation from `clock` (tests inject a fake one)."""
        self.timebase.use(clock)

    def reset(self) -> None:
        """Forget every counter, job and key change; keep the bindings and the clock."""
        self.timebase.use(self.timebase.clock)
        self._build()

    def stats(self) -> dict[str, Any]:
        """The ground truth for the whole fleet, in the /_sim/stats shape."""
        now = self.timebase.now()
        svms: dict[str, Any] = {}
        clusters: dict[str, Any] = {}
        for cluster in self.clusters:
            cluster.settle(now)
            for config in cluster.configs:
                svms[config.target] = {
                    "provider": config.provider.name,
                    "rekeys": [dict(entry) for entry in config.rekeys],
                    "key_id": config.key_id,
                    "key_version": config.key_version,
                    "attempts": config.attempts,
                    "refusals": dict(config.refusals),
                }
            clusters[cluster.name] = cluster.stats()
        spans = [span for cluster in self.clusters for span in cluster.rekey_spans]
        fleet = {"peak_concurrent_rekeys": peak_overlap(spans)}
        # Every rekey job's (start, end) on this process's monotonic clock: on Linux one
        # clock for every process of the machine, so a fleet sharded over simulator
        # processes has its fleet-wide peak from the union (benchmarks/harness.py).
        return {"svms": svms, "clusters": clusters, "fleet": fleet, "rekey_spans": spans}


def peak_overlap(spans: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) spans running at one instant (ends first on ties)."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak
