"""The objects one simulated cluster holds: nodes, SVMs, AWS KMS configurations."""

from __future__ import annotations

import random
import uuid as uuidlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.simulator.providers import AWS, Provider
from orchestrator.simulator.scenario import Distribution, KeystoreState, RateFault, RekeyFault

if TYPE_CHECKING:
    from orchestrator.simulator.jobs import Job

NAMESPACE = uuidlib.UUID("6f1d3a52-7a0e-4c55-9a61-0c3b2f4e8d10")
CLUSTER_SCOPE = "-"  # the SVM part of the cluster-scoped configuration's target name


def stable_uuid(*parts: str) -> str:
    """A UUID that depends only on names, so a restarted simulator keeps its uuids."""
    return str(uuidlib.uuid5(NAMESPACE, "/".join(parts)))


@dataclass(frozen=True)
class Node:
    """A cluster node."""

    name: str
    uuid: str
    up: bool = True  # False under a `node_down` fault


@dataclass(eq=False)
class Svm:
    """A data SVM (or, for the cluster scope, the admin SVM named after the cluster)."""

    name: str
    uuid: str
    kms: KmsConfig | None = None
    state: str = "running"
    subtype: str = "default"

    def ref(self) -> dict[str, str]:
        """`{"name", "uuid"}` as ONTAP embeds an SVM."""
        return {"name": self.name, "uuid": self.uuid}


@dataclass(eq=False)
class KmsConfig:
    """One cloud key manager configuration (AWS KMS unless `provider` says otherwise):
    the thing a rekey targets."""

    uuid: str
    cluster: str
    svm: Svm  # the owning SVM; the admin SVM for the cluster scope
    scope: str  # "svm" | "cluster"
    key_id: str
    faults: tuple[RekeyFault, ...]
    rate_faults: tuple[RateFault, ...]
    job_duration: Distribution
    rng: random.Random
    provider: Provider = AWS
    amazon_reachable: bool = True  # the cloud key service is reachable (any provider)
    ekmip_unreachable: frozenset[str] = frozenset()
    state_override: KeystoreState | None = None
    health_path: Literal["sync", "job"] | None = None  # `as:` of the health facts
    enabled: bool = True  # False under `keystore_disabled` until a PATCH enables it
    cleared: set[str] = field(default_factory=set)  # fault kinds a remedy ended
    key_version: int = 1
    attempts: int = 0
    running: Job | None = None
    rekeys: list[dict[str, Any]] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)

    @property
    def keystore_uuid(self) -> str:
        """The key store's uuid: ONTAP gives it the configuration's uuid."""
        return self.uuid

    @property
    def target(self) -> str:
        """`<cluster>/<svm>`, with `-` for the cluster-scoped configuration."""
        svm = CLUSTER_SCOPE if self.scope == "cluster" else self.svm.name
        return f"{self.cluster}/{svm}"

    @property
    def svm_name(self) -> str:
        """The SVM name used to select faults (`-` for the cluster scope)."""
        return CLUSTER_SCOPE if self.scope == "cluster" else self.svm.name

    def job_svm(self) -> dict[str, str]:
        """The `svm` a job on this configuration reports."""
        return self.svm.ref()

    def rate_hit(self, kind: str) -> bool:
        """Draw once for each matching rate fault of `kind`; True if any fires."""
        hit = False
        for fault in self.rate_faults:
            if fault.kind == kind and self.rng.random() < fault.rate:
                hit = True
        return hit

    def active_fault(self, attempt: int, elapsed: float) -> RekeyFault | None:
        """The first rekey fault active for this POST (draws for rate-based faults)."""
        for fault in self.faults:
            if (
                fault.kind not in self.cleared
                and _holds(fault, attempt, elapsed)
                and (fault.rate is None or self.rng.random() < fault.rate)
            ):
                return fault
        return None

    def shown_state(self, elapsed: float) -> KeystoreState | None:
        """The key store state a pending fault shows (initializing, switching, ...)."""
        for fault in self.faults:
            if (
                fault.shows_state
                and fault.kind not in self.cleared
                and fault.rate is None
                and _holds(fault, self.attempts + 1, elapsed)
            ):
                return fault.shows_state
        return self.state_override


def _holds(fault: RekeyFault, attempt: int, elapsed: float) -> bool:
    if fault.attempts is not None and attempt > fault.attempts:
        return False
    return fault.seconds is None or elapsed < fault.seconds
