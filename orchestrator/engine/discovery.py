"""Discovery: one cluster's version, its key manager configurations (every collection a
target of it may use: AWS KMS, Azure Key Vault, Google Cloud KMS, Barbican) with their
health fields and the key stores (the readiness facts `plan` judges, and `run` orders by),
turned into the run's target rows. Each row knows its provider and the run's operation;
whether the cluster's version has that rotation is decided per target (`target_skip`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import anyio
import structlog

from orchestrator.core.backoff import WAITS, Purpose, next_delay
from orchestrator.core.errors import ErrorClass, ErrorKind, OntapError
from orchestrator.core.identity import expected_uuid, identity_problem
from orchestrator.core.inventory import KEY_ID_CURRENT, ClusterSpec, GcpKeyTemplates, ProviderSet
from orchestrator.core.key_managers import (
    Skip,
    expected_key_after,
    providers_to_discover,
    target_skip,
)
from orchestrator.core.keyids import check_intended_key, intended_key
from orchestrator.core.policy import RetryRule, classify
from orchestrator.core.providers import (
    IntendedKey,
    Operation,
    Provider,
    is_rekey_pair,
    serves_collection,
    unsupported_reason,
)
from orchestrator.core.selectors import (
    WHOLE_CLUSTER,
    Selection,
    discovery_problems,
    inventory_targets,
    target_matches,
)
from orchestrator.core.targets import Outcome, SkipReason, TargetKey, TargetState
from orchestrator.engine.recorder import row_with
from orchestrator.errors import UserError
from orchestrator.ledger.records import TargetRow
from orchestrator.observe import events
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.models import ClusterInfo, KeyManagerConfig, KeyStore, key_stores_by_target

log = structlog.get_logger()

_RETRY = WAITS[Purpose.DISCOVERY]  # attempts, pauses, Retry-After: core/backoff.py

ALL_SVMS = WHOLE_CLUSTER
"""The stand-in SVM name of a `svms: all` cluster whose SVMs could not be discovered."""


@dataclass(frozen=True)
class Discovery:
    """What one cluster told us, or the error that stopped it."""

    cluster: str
    info: ClusterInfo | None = None
    configs: tuple[KeyManagerConfig, ...] = ()
    key_stores: tuple[KeyStore, ...] = ()
    error: OntapError | None = None
    rule: RetryRule | None = None
    readiness_error: OntapError | None = None  # the health / key-store read refused
    identity_problem: str | None = None  # another cluster answers: see core/identity.py

    @property
    def skip_reason(self) -> SkipReason | None:
        """Why none of this cluster's targets can be attempted, if so."""
        if self.rule is not None and self.rule.error_class is ErrorClass.AUTH:
            return SkipReason.AUTH_FAILED
        if self.error is not None and self.error.kind is ErrorKind.TLS:
            return SkipReason.TLS_FAILED  # answered, but not provably the cluster: fix tls:
        if self.error is not None:
            return SkipReason.UNREACHABLE
        if self.identity_problem is not None:
            return SkipReason.IDENTITY_MISMATCH
        return None  # the version is judged per target: each provider has its own gates

    @cached_property
    def configs_by_uuid(self) -> dict[str, KeyManagerConfig]:
        """Each configuration by its uuid (the first listed of a uuid): every target's
        lookup in one dict instead of a walk through the cluster's list."""
        index: dict[str, KeyManagerConfig] = {}
        for config in self.configs:
            index.setdefault(config.uuid, config)
        return index

    @cached_property
    def key_stores_by_target(self) -> dict[tuple[str, str], KeyStore]:
        """`ontap.models.key_stores_by_target` of this cluster's key stores."""
        return key_stores_by_target(self.key_stores)


async def discover(client: OntapClient, spec: ClusterSpec, *, timeout_s: float) -> Discovery:
    """Ask one cluster for its version and configurations; never raises OntapError.

    The rotation starts when every cluster is discovered, so a cluster that accepts
    connections and then never answers is given up on after `timeout_s` (all retries
    included): its targets end `skipped: unreachable` instead of holding up the fleet.
    """
    log.info(events.DISCOVERY_STARTED, cluster=spec.name)
    try:
        found = await _discover_within(client, spec, timeout_s=timeout_s)
    except OntapError as err:
        rule = classify(err)
        log.warning(
            events.DISCOVERY_FAILED,
            cluster=spec.name,
            error_code=err.code,
            error_class=rule.error_class.value,
            message=err.summary(),
        )
        return Discovery(spec.name, error=err, rule=rule)
    log.info(
        events.DISCOVERY_FINISHED,
        cluster=spec.name,
        configurations=len(found.configs),
        version=found.info.version_full if found.info else None,
    )
    return found


async def _discover_within(
    client: OntapClient, spec: ClusterSpec, *, timeout_s: float
) -> Discovery:
    with anyio.move_on_after(timeout_s):
        return await _discover_with_retries(client, spec)
    raise OntapError(
        cluster=spec.name,
        operation="discovery",
        kind=ErrorKind.SENT,
        message=f"no complete answer within {timeout_s:g} s (--discovery-timeout)",
    )


async def _discover_with_retries(client: OntapClient, spec: ClusterSpec) -> Discovery:
    """A transient failure of a discovery GET (a read timeout, a reset, 503/429) is retried
    a few times: one slow answer must not skip a whole cluster as unreachable. A refused
    connection (the cluster is down) and every other class fail at once."""
    for attempt in range(1, _RETRY.tries + 1):
        try:
            return await _discover(client, spec)
        except OntapError as err:
            retryable = classify(err).error_class is ErrorClass.RETRYABLE
            if attempt == _RETRY.tries or not retryable or err.kind is ErrorKind.CONNECT:
                raise
            await anyio.sleep(next_delay(_RETRY, attempt, retry_after=err.retry_after))
    raise AssertionError("unreachable")  # pragma: no cover


async def _discover(client: OntapClient, spec: ClusterSpec) -> Discovery:
    name = spec.name
    info = await client.cluster_info()
    problem = _check_identity(spec, info)
    if problem is not None:  # ask a stranger nothing more
        return Discovery(name, info=info, identity_problem=problem)
    try:
        configs, stores = await _readiness_reads(client, spec, info)
    except OntapError as err:
        if not _readiness_refused(err):
            raise
        # The rekey needs only the configurations: the run goes on without the facts
        # (plan calls these targets `discovery_failed`, with the error).
        configs = await _configs(client, spec, info, health=False)
        return Discovery(name, info=info, configs=configs, readiness_error=err)
    return Discovery(name, info=info, configs=configs, key_stores=stores)


async def _configs(
    client: OntapClient, spec: ClusterSpec, info: ClusterInfo, *, health: bool
) -> tuple[KeyManagerConfig, ...]:
    """Every configuration of the providers this cluster's targets may use (a collection
    the version does not serve is not asked for)."""
    wanted = providers_to_discover(spec)
    return tuple(await client.list_key_managers(wanted, version=info.version, health=health))


async def _readiness_reads(
    client: OntapClient, spec: ClusterSpec, info: ClusterInfo
) -> tuple[tuple[KeyManagerConfig, ...], tuple[KeyStore, ...]]:
    """The configurations with their health fields, and the key stores: the facts `plan`
    judges readiness by. `run` reads the same, so it never starts a canary or a wave with
    a target the plan would call not ready."""
    configs = await _configs(client, spec, info, health=True)
    stores = tuple(await client.list_key_stores())
    return configs, stores


def _readiness_refused(err: OntapError) -> bool:
    """ONTAP answered the readiness read with an error of its own (e.g. 65537915, AWS
    unreachable from a node): not a reason to give up the cluster. Transport errors,
    401 and 429/503 are handled as for every discovery read."""
    error_class = classify(err).error_class
    answered = err.kind in (ErrorKind.HTTP, ErrorKind.PROTOCOL)
    return answered and error_class not in (ErrorClass.AUTH, ErrorClass.RETRYABLE)


def _check_identity(spec: ClusterSpec, info: ClusterInfo) -> str | None:
    """The identity problem of the cluster that answered (logged loudly), or None."""
    problem = identity_problem(spec, info.uuid)
    if problem is not None:
        expected = expected_uuid(spec)
        log.warning(
            events.CLUSTER_IDENTITY_MISMATCH,
            cluster=spec.name,
            expected_uuid=expected[0] if expected else None,
            pinned_by=expected[1] if expected else None,
            reported_uuid=info.uuid,
            reported_name=info.name,
            message=problem,
        )
    elif info.name != spec.name:  # inventory names are often DNS names: only a warning
        log.warning(events.CLUSTER_NAME_MISMATCH, cluster=spec.name, reported_name=info.name)
    return problem


@dataclass(frozen=True)
class Wanted:
    """A target the inventory asks for, before we know whether it exists."""

    svm: str
    key_id: str  # template (AWS, Azure)
    priority: int
    providers: ProviderSet = None  # `providers:` resolved for this target (None: all)
    gcp_key: GcpKeyTemplates = field(default_factory=GcpKeyTemplates)  # GCP key templates


def wanted_targets(
    spec: ClusterSpec, discovery: Discovery, operation: Operation = Operation.EXTERNAL
) -> Iterator[Wanted]:
    """The inventory's targets for this cluster (`core.selectors.inventory_targets`, the
    one rule), `svms: all` expanded from discovery (a cluster that could not tell its SVMs
    stands as `cluster/*`), each with the settings of its entry or of the cluster."""
    entries = {entry.name: entry for entry in spec.svms}
    for svm in inventory_targets(spec, _found_svms(spec, discovery, operation)):
        entry = entries.get(svm)
        if entry is None:
            yield Wanted(svm, spec.key_id, spec.priority, spec.providers, spec.gcp_key)
        else:
            yield Wanted(svm, entry.key_id, entry.priority, entry.providers, entry.gcp_key)


def _found_svms(spec: ClusterSpec, discovery: Discovery, operation: Operation) -> list[str] | None:
    """The SVMs discovery found configured (an SVM listed by two collections is one
    target), or None when it could not tell them (then the cluster stands as `*`)."""
    unlistable = _unlistable(discovery, spec.providers, operation)
    if discovery.skip_reason is not None or unlistable is not None:
        return None
    return [config.target_svm for config in discovery.configs if config.scope == "svm"]


def target_rows(
    run_id: str,
    spec: ClusterSpec,
    discovery: Discovery,
    selection: Selection,
    operation: Operation = Operation.EXTERNAL,
) -> list[TargetRow]:
    """One row per selected target: PENDING, or already DONE when discovery decided it."""
    by_svm: dict[str, list[KeyManagerConfig]] = {}
    for found in discovery.configs:
        by_svm.setdefault(found.target_svm, []).append(found)
    cluster = _ClusterRows(run_id, spec, discovery, operation)
    rows = []
    for wanted in wanted_targets(spec, discovery, operation):
        if wanted.svm != ALL_SVMS and not target_matches(selection, spec, wanted.svm):
            continue
        config = _config_for(by_svm.get(wanted.svm, []), wanted)
        rows.append(_row(cluster, wanted, config))
    return rows


class _ClusterRows:
    """What every row of one cluster shares, worked out once per cluster: each row is a
    copy of `template` (`row_with`, ~4 us) instead of a new `TargetRow(...)` (its frozen
    `__init__` sets 26 fields one by one, ~15 us), per target at 100,000 targets."""

    def __init__(
        self, run_id: str, spec: ClusterSpec, discovery: Discovery, operation: Operation
    ) -> None:
        self.spec, self.discovery, self.operation = spec, discovery, operation
        self.template = TargetRow(
            run_id=run_id,
            key=TargetKey(spec.name, ALL_SVMS),
            cluster_uuid=_recorded_uuid(discovery),
            operation=operation.value,
        )

    def base(self, wanted: Wanted, **more: Any) -> TargetRow:
        """`TargetRow(run_id, key, priority, cluster_uuid, operation, **more)`; its own
        `facts` and `evidence` (never the template's: a row's dicts are its own)."""
        key = TargetKey(self.spec.name, wanted.svm)
        facts = more.pop("facts", {})
        return row_with(
            self.template, key=key, priority=wanted.priority, facts=facts, evidence={}, **more
        )


def _config_for(found: Sequence[KeyManagerConfig], wanted: Wanted) -> KeyManagerConfig | None:
    """The target's configuration: the first of an allowed provider, else (to say which
    provider the SVM uses) the first at all."""
    allowed = [c for c in found if wanted.providers is None or c.provider in wanted.providers]
    return next(iter(allowed or found), None)


def _row(cluster: _ClusterRows, wanted: Wanted, config: KeyManagerConfig | None) -> TargetRow:
    discovery, operation = cluster.discovery, cluster.operation
    if (reason := discovery.skip_reason) is not None:
        return _skipped(cluster.base(wanted), reason, discovery)
    if config is None:
        if (too_old := _unlistable(discovery, wanted.providers, operation)) is not None:
            return _skipped_by(cluster.base(wanted), too_old)
        return _skipped(cluster.base(wanted), SkipReason.NOT_CONFIGURED, discovery)
    assert discovery.info is not None  # configurations come only with the cluster's info
    skip = target_skip(config.provider, operation, discovery.info.version, wanted.providers)
    if skip is not None:
        return _skipped_by(cluster.base(wanted, **_config_fields(config)), skip)
    return _with_intended_key(cluster, wanted, config)


def _config_fields(config: KeyManagerConfig) -> dict[str, Any]:
    """The row's fields that name its configuration."""
    return {
        "provider": config.provider.value,
        "config_uuid": config.uuid,
        "key_id_before": config.key_id,
    }


def _unlistable(discovery: Discovery, providers: ProviderSet, operation: Operation) -> Skip | None:
    """`unsupported_version` for a target without a configuration on a cluster that lists
    none at all while its version cannot even show a provider the target may use (AWS KMS
    before 9.12): the SVM's key manager may be one this version cannot rekey."""
    if discovery.info is None or discovery.configs:
        return None
    version = discovery.info.version
    allowed = providers or tuple(Provider)
    unlistable = [
        p for p in allowed if is_rekey_pair(p, operation) and not serves_collection(p, version)
    ]
    if not unlistable:
        return None
    return Skip(
        SkipReason.UNSUPPORTED_VERSION, unsupported_reason(unlistable[0], operation, version)
    )


def _with_intended_key(
    cluster: _ClusterRows, wanted: Wanted, config: KeyManagerConfig
) -> TargetRow:
    """The row with the key it sends (external) or must keep (internal); a key of the
    wrong shape for its provider ends the target `failed` before anything is sent."""
    spec, operation = cluster.spec, cluster.operation
    if operation is Operation.INTERNAL:  # no body; the cloud key id must stay as it is
        after = expected_key_after(operation, before=config.key_id, intended=config.key_id)
        return cluster.base(wanted, **_config_fields(config), key_id_intended=after)
    template = wanted.gcp_key.key_name if config.provider is Provider.GCP else wanted.key_id
    key = intended_key(
        config.provider,
        key_id=wanted.key_id,
        gcp=wanted.gcp_key,
        cluster=spec.name,
        svm=wanted.svm,
        current=config.key_id,
    )
    facts = {GCP_KEY_FACT: key.gcp_fields()} if key.gcp_fields() else {}
    row = cluster.base(wanted, **_config_fields(config), key_id_intended=key.key, facts=facts)
    problem = check_intended_key(config.provider, key, key_is_current=template == KEY_ID_CURRENT)
    if problem is None:
        return row
    return replace(
        row,
        state=TargetState.DONE,
        outcome=Outcome.FAILED.value,
        reason=INVALID_KEY,
        error_message=problem.message,
        error_class=problem.error_class,
        error_hint=problem.hint,
    )


GCP_KEY_FACT = "gcp_key"
"""TargetRow.facts key: GCP's optional ring fields the rekey-external sends."""

INVALID_KEY = "invalid_key"
"""The `reason` of a target `failed` before its POST: its key has the wrong shape."""


def row_intended_key(row: TargetRow) -> IntendedKey | None:
    """The key the row's rekey sends; None for rekey-internal (no body)."""
    if row.operation_kind is Operation.INTERNAL:
        return None
    ring = row.facts.get(GCP_KEY_FACT) or {}
    return IntendedKey(
        row.key_id_intended or "",
        project_id=ring.get("project_id"),
        key_ring_location=ring.get("key_ring_location"),
        key_ring_name=ring.get("key_ring_name"),
    )


def _recorded_uuid(discovery: Discovery) -> str | None:
    """The uuid the ledger remembers for this entry: never a stranger's."""
    if discovery.info is None or discovery.identity_problem is not None:
        return None
    return discovery.info.uuid.lower()


def _skipped(base: TargetRow, reason: SkipReason, discovery: Discovery) -> TargetRow:
    err, rule = discovery.error, discovery.rule
    return replace(
        base,
        state=TargetState.DONE,
        outcome=Outcome.SKIPPED.value,
        reason=reason.value,
        error_code=err.code if err else None,
        error_message=err.summary() if err else _skip_message(reason, discovery),
        error_class=rule.error_class.value if rule else None,
        error_hint=rule.hint if rule else None,
    )


def _skipped_by(base: TargetRow, skip: Skip) -> TargetRow:
    return replace(
        base,
        state=TargetState.DONE,
        outcome=Outcome.SKIPPED.value,
        reason=skip.reason.value,
        error_message=skip.message,
    )


def _skip_message(reason: SkipReason, discovery: Discovery) -> str | None:
    if reason is SkipReason.NOT_CONFIGURED:
        return "no cloud key manager configuration for this SVM on the cluster"
    if reason is SkipReason.IDENTITY_MISMATCH:
        return discovery.identity_problem
    return None


def require_selected_targets(
    selection: Selection, found: Iterable[str], rows: Sequence[TargetRow]
) -> None:
    """Exit 2 (before any POST) when, after discovery, a selector matched nothing the
    clusters hold (`found`: the clusters discovered), or no target is selected at all:
    never a green run of nothing."""
    svms: dict[str, set[str]] = {name: set() for name in found}
    for row in rows:
        svms.setdefault(row.key.cluster, set()).add(row.key.svm)
    undiscovered = {name for name, names in svms.items() if ALL_SVMS in names}
    problems = discovery_problems(selection, svms, undiscovered)
    if problems:
        raise UserError(*problems)
