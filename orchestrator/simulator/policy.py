"""What a scenario means for one cluster: its effective facts and the faults that apply.

Computed once per cluster (when the cluster is first used), so the per-request path never
walks the scenario.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.simulator.scenario import (
    ClusterFault,
    Distribution,
    DistributionFault,
    Options,
    OverloadMix,
    RateFault,
    RekeyFault,
    Scenario,
    SvmFault,
)


@dataclass(frozen=True)
class ClusterPolicy:
    """The effective settings of one cluster (cluster facts: the last matching fault wins)."""

    options: Options
    version: str | None = None
    unreachable: bool = False
    down_nodes: tuple[str, ...] = ()  # node globs (`node_down` faults)
    cluster_scope: bool = False
    password: str | None = None
    wrong_password: bool = False
    max_concurrent_requests: int = 64
    overload: OverloadMix = field(default_factory=OverloadMix)
    latency: Distribution | None = None
    rate_faults: tuple[RateFault, ...] = ()
    rekey_faults: tuple[RekeyFault, ...] = ()
    svm_faults: tuple[SvmFault, ...] = ()
    job_durations: tuple[DistributionFault, ...] = ()

    def job_duration_for(self, cluster: str, svm: str) -> Distribution:
        """The job-duration distribution of one configuration (last match wins)."""
        chosen = self.options.job_duration
        for fault in self.job_durations:
            if fault.matches(cluster, svm):
                chosen = fault.distribution
        return chosen

    def svm_facts(self, cluster: str, svm: str) -> tuple[SvmFault, ...]:
        """The SVM faults selecting this SVM, in file order."""
        return tuple(f for f in self.svm_faults if f.matches(cluster, svm))


def policy_for(scenario: Scenario, cluster: str) -> ClusterPolicy:
    """Fold the scenario's faults selecting `cluster` into one ClusterPolicy."""
    options = scenario.options
    facts: dict[str, object] = {
        "max_concurrent_requests": options.max_concurrent_requests,
        "overload": options.overload,
        "latency": options.latency,
        "down_nodes": (),
    }
    lists: dict[str, list[object]] = {
        "rate_faults": [],
        "rekey_faults": [],
        "svm_faults": [],
        "job_durations": [],
    }
    for fault in scenario.faults:
        if fault.matches(cluster):
            _fold(fault, facts, lists)
    return ClusterPolicy(
        options=options,
        **facts,  # type: ignore[arg-type]
        **{name: tuple(items) for name, items in lists.items()},  # type: ignore[arg-type]
    )


def _fold(
    fault: RekeyFault | RateFault | DistributionFault | ClusterFault | SvmFault,
    facts: dict[str, object],
    lists: dict[str, list[object]],
) -> None:
    if isinstance(fault, RekeyFault):
        lists["rekey_faults"].append(fault)
    elif isinstance(fault, RateFault):
        lists["rate_faults"].append(fault)
    elif isinstance(fault, SvmFault):
        lists["svm_faults"].append(fault)
    elif isinstance(fault, DistributionFault):
        if fault.kind == "latency":
            facts["latency"] = fault.distribution
        else:
            lists["job_durations"].append(fault)
    else:
        _fold_cluster_fact(fault, facts)


def _fold_cluster_fact(fault: ClusterFault, facts: dict[str, object]) -> None:
    if fault.kind == "unreachable":
        facts["unreachable"] = True
    elif fault.kind == "cluster_scope":
        facts["cluster_scope"] = True
    elif fault.kind == "wrong_password":
        facts["wrong_password"] = True
        facts["password"] = fault.password
    elif fault.kind == "version":
        facts["version"] = fault.version
    elif fault.kind == "node_down":
        facts["down_nodes"] = (*facts["down_nodes"], fault.node)  # type: ignore[misc]
    else:
        if fault.max_concurrent_requests is not None:
            facts["max_concurrent_requests"] = fault.max_concurrent_requests
        if fault.mix is not None:
            facts["overload"] = fault.mix
