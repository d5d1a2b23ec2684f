"""Resolve a checked raw model into the immutable `orchestrator.core.inventory` types.

Pure: no file is opened and no variable read here. A value comes from the first level
that sets it: the SVM entry, then the cluster, then the cluster's groups in the order the
cluster lists them, then `defaults`, then the built-in default. `auth` and `tls` are
taken whole from one level, never merged key by key (a username from one level and a
password from another would be a surprise). Tags add up: the cluster's own, then its
groups' in order, each once.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from orchestrator.core.errors import ErrorClass
from orchestrator.core.inventory import (
    DEFAULT_COMMAND_TIMEOUT_S,
    KEY_ID_CURRENT,
    Auth,
    BasicAuth,
    CertAuth,
    ClusterSpec,
    GcpKeyTemplates,
    Inventory,
    ProviderSet,
    RetryOverride,
    RunDefaults,
    SvmEntry,
    TlsSettings,
    TokenAuth,
)
from orchestrator.core.inventory_model import (
    AuthModel,
    ClusterModel,
    DefaultsModel,
    InventoryModel,
    KeyManagerFields,
    RetryModel,
    SettingsModel,
    SvmModel,
    TlsModel,
)
from orchestrator.core.providers import Operation, Provider

T = TypeVar("T")


def resolve_path(base_dir: Path, text: str) -> Path:
    """A path from the inventory: `~` expanded, relative to the inventory's folder."""
    return base_dir / Path(text).expanduser()


def resolve(model: InventoryModel, *, path: Path, sha256: str) -> Inventory:
    """The resolved inventory of a model whose references were checked.

    Raises ValueError for a cluster that names an undefined group or has no auth at any
    level (the loader reports those as inventory errors before it calls this).
    """
    base_dir = path.parent
    clusters = tuple(_cluster(model, cluster, base_dir) for cluster in model.clusters)
    return Inventory(
        path=path,
        sha256=sha256,
        version=model.version,
        clusters=clusters,
        defaults=_run_defaults(model.defaults),
        retry={code: _retry(item) for code, item in sorted(model.retry.items())},
    )


def _first(values: Iterable[T | None]) -> T | None:
    return next((value for value in values if value is not None), None)


def _levels(model: InventoryModel, cluster: ClusterModel) -> tuple[SettingsModel, ...]:
    """The cluster, its groups in its order, then defaults: the inheritance chain."""
    missing = [name for name in cluster.groups if name not in model.groups]
    if missing:
        raise ValueError(f"cluster {cluster.name!r}: undefined groups {missing}")
    groups = tuple(model.groups[name] for name in cluster.groups)
    return (cluster, *groups, model.defaults)


def _cluster(model: InventoryModel, cluster: ClusterModel, base_dir: Path) -> ClusterSpec:
    levels = _levels(model, cluster)
    key_id = _first(level.key_id for level in levels) or KEY_ID_CURRENT
    priority = _first(level.priority for level in levels) or 0
    auth = _first(level.auth for level in levels)
    if auth is None:
        raise ValueError(f"cluster {cluster.name!r} has no auth at any level")
    return ClusterSpec(
        name=cluster.name,
        base_url=cluster.host,  # the model already normalised host into a base URL
        auth=_auth(auth, base_dir),
        tls=_tls(_first(level.tls for level in levels), base_dir),
        key_id=key_id,
        per_cluster=_first(level.per_cluster for level in levels),
        priority=priority,
        tags=_tags(model, cluster),
        groups=cluster.groups,
        all_svms=cluster.svms == "all",
        svms=_svms(cluster, key_id, priority, levels),
        include_cluster_scope=bool(_first(level.include_cluster_scope for level in levels)),
        uuid=cluster.uuid,
        providers=_providers(levels),
        gcp_key=_gcp_key(levels),
    )


def _tags(model: InventoryModel, cluster: ClusterModel) -> tuple[str, ...]:
    group_tags = (tag for name in cluster.groups for tag in model.groups[name].tags)
    return tuple(dict.fromkeys((*cluster.tags, *group_tags)))


def _svms(
    cluster: ClusterModel, key_id: str, priority: int, levels: tuple[SettingsModel, ...]
) -> tuple[SvmEntry, ...]:
    if isinstance(cluster.svms, str):  # `svms: all`: found by discovery
        return ()
    return tuple(_svm(entry, key_id, priority, levels) for entry in cluster.svms)


def _svm(
    entry: SvmModel, key_id: str, priority: int, levels: tuple[SettingsModel, ...]
) -> SvmEntry:
    return SvmEntry(
        name=entry.name,
        key_id=entry.key_id if entry.key_id is not None else key_id,
        priority=entry.priority if entry.priority is not None else priority,
        providers=_providers((entry, *levels)),
        gcp_key=_gcp_key((entry, *levels)),
    )


# -- issue 15: providers and GCP key fields, each from the first level that sets it ------


def _providers(levels: Iterable[KeyManagerFields]) -> ProviderSet:
    names = _first(level.providers for level in levels)
    return None if names is None else tuple(sorted({Provider(name) for name in names}))


def _gcp_key(levels: Iterable[KeyManagerFields]) -> GcpKeyTemplates:
    chain = tuple(levels)
    return GcpKeyTemplates(
        key_name=_first(level.key_name for level in chain) or KEY_ID_CURRENT,
        project_id=_first(level.project_id for level in chain),
        key_ring_location=_first(level.key_ring_location for level in chain),
        key_ring_name=_first(level.key_ring_name for level in chain),
    )


def _auth(auth: AuthModel, base_dir: Path) -> Auth:
    timeout = float(auth.command_timeout or DEFAULT_COMMAND_TIMEOUT_S)
    if auth.method == "token":
        return TokenAuth(
            token_env=auth.token_env,
            token_command=_argv(auth.token_command, base_dir),
            command_timeout_s=timeout,
        )
    if auth.method == "cert":
        return CertAuth(
            client_cert=resolve_path(base_dir, str(auth.client_cert)),
            client_key=resolve_path(base_dir, str(auth.client_key)),
        )
    return BasicAuth(
        username=str(auth.username),
        password_env=auth.password_env,
        password_file=(
            resolve_path(base_dir, auth.password_file) if auth.password_file is not None else None
        ),
        password_command=_argv(auth.password_command, base_dir),
        command_timeout_s=timeout,
    )


def _argv(argv: tuple[str, ...] | None, base_dir: Path) -> tuple[str, ...] | None:
    """A program given as a relative path (`./get-secret`, `bin/x`) starts at the
    inventory's folder like every other path; a bare name is looked up on PATH."""
    if argv is None:
        return None
    program = argv[0]
    if "/" in program and not Path(program).expanduser().is_absolute():
        program = str(resolve_path(base_dir, program))
    return (str(Path(program).expanduser()) if program.startswith("~") else program, *argv[1:])


def _tls(tls: TlsModel | None, base_dir: Path) -> TlsSettings:
    if tls is None:
        return TlsSettings()
    bundle = resolve_path(base_dir, tls.ca_bundle) if tls.ca_bundle is not None else None
    return TlsSettings(verify=tls.verify, ca_bundle=bundle)


def _run_defaults(defaults: DefaultsModel) -> RunDefaults:
    return RunDefaults(
        concurrency=defaults.concurrency,
        per_cluster=defaults.per_cluster,
        waves=defaults.waves,
        max_fail_percent=defaults.max_fail_percent,
        return_timeout=defaults.return_timeout,
        rekey=Operation(defaults.rekey) if defaults.rekey is not None else None,
    )


def _retry(item: RetryModel) -> RetryOverride:
    return RetryOverride(
        error_class=ErrorClass(item.error_class) if item.error_class is not None else None,
        max_attempts=item.max_attempts,
        base_delay_s=item.base_delay_s,
        max_delay_s=item.max_delay_s,
    )
