"""The resolved inventory: immutable, typed, every value already inherited.

`orchestrator.config.loader` parses YAML into the raw pydantic model
(`orchestrator.core.inventory_model`) and resolves it into these types (SVM entry, then
cluster, then its groups in order, then `defaults`). No secret value is ever held here:
only the names of environment variables, the paths of files and the argv of commands.
Secrets are read at connection time, by the transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.core.errors import ErrorClass
from orchestrator.core.providers import Operation, Provider

KEY_ID_CURRENT = "current"
"""`key_id: current`: rekey with the key id configured now (a re-version)."""


DEFAULT_COMMAND_TIMEOUT_S = 30.0
"""How long a `password_command` / `token_command` may run (`auth.command_timeout`)."""


# -- issue 15: GCP's key fields (AWS and Azure use `key_id`) ------------------------------
@dataclass(frozen=True)
class GcpKeyTemplates:
    """The inventory's GCP key fields for a target; each may use `{cluster}`/`{svm}`.

    `key_name` may be `current`; the ring fields are None unless the inventory sets them
    (ONTAP then keeps the configured project and key ring).
    """

    key_name: str = KEY_ID_CURRENT
    project_id: str | None = None
    key_ring_location: str | None = None
    key_ring_name: str | None = None


ProviderSet = tuple[Provider, ...] | None
"""`providers:` resolved, sorted: the key managers whose configurations are targets;
None: all of them."""


@dataclass(frozen=True)
class BasicAuth:
    username: str
    password_env: str | None = None
    password_file: Path | None = None
    password_command: tuple[str, ...] | None = None  # argv, run without a shell
    command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S


@dataclass(frozen=True)
class CertAuth:
    client_cert: Path
    client_key: Path


@dataclass(frozen=True)
class TokenAuth:
    token_env: str | None = None
    token_command: tuple[str, ...] | None = None  # argv, run without a shell
    command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S


Auth = BasicAuth | CertAuth | TokenAuth


@dataclass(frozen=True)
class TlsSettings:
    verify: bool = True
    ca_bundle: Path | None = None


@dataclass(frozen=True)
class RetryOverride:
    """An inventory `retry:` entry for one ONTAP code; None keeps the built-in value."""

    error_class: ErrorClass | None = None
    max_attempts: int | None = None
    base_delay_s: float | None = None
    max_delay_s: float | None = None


@dataclass(frozen=True)
class SvmEntry:
    """An SVM named in the inventory, with its resolved key id template and priority."""

    name: str
    key_id: str
    priority: int = 0
    # -- issue 15 --
    providers: ProviderSet = None
    gcp_key: GcpKeyTemplates = field(default_factory=GcpKeyTemplates)


@dataclass(frozen=True)
class ClusterSpec:
    name: str
    base_url: str  # "https://host:port", or "http://127.x.y.z:port" for the simulator alone
    auth: Auth
    tls: TlsSettings
    key_id: str  # the cluster-level key id template, for `svms: all` and the cluster scope
    per_cluster: int | None = None
    priority: int = 0
    tags: tuple[str, ...] = ()  # the cluster's own tags and its groups' tags
    groups: tuple[str, ...] = ()
    all_svms: bool = False  # `svms: all`: every SVM-scoped configuration found
    svms: tuple[SvmEntry, ...] = ()
    include_cluster_scope: bool = False
    uuid: str | None = None  # the inventory's `uuid:` pin (lower case)
    recorded_uuid: str | None = None  # the uuid the ledger recorded (set by run and plan)
    # -- issue 15: the cluster-level values, for `svms: all` and the cluster scope --
    providers: ProviderSet = None
    gcp_key: GcpKeyTemplates = field(default_factory=GcpKeyTemplates)


@dataclass(frozen=True)
class RunDefaults:
    """Run options the inventory's `defaults:` may set; the command line wins."""

    concurrency: int | None = None
    per_cluster: int | None = None
    waves: str | None = None
    max_fail_percent: float | None = None
    return_timeout: int | None = None
    rekey: Operation | None = None  # issue 15: `defaults: {rekey: internal}`


@dataclass(frozen=True)
class Inventory:
    path: Path
    sha256: str
    version: int
    clusters: tuple[ClusterSpec, ...]
    defaults: RunDefaults = field(default_factory=RunDefaults)
    retry: dict[str, RetryOverride] = field(default_factory=dict)  # ONTAP code -> override

    def cluster(self, name: str) -> ClusterSpec:
        for spec in self.clusters:
            if spec.name == name:
                return spec
        raise KeyError(name)
