"""Discovery: one cluster's version, AWS KMS configurations with their health fields and
the key stores (the readiness facts `plan` judges, and `run` orders by), turned into the
run's target rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import anyio
import structlog

from orchestrator.core.errors import ErrorClass, ErrorKind, OntapError
from orchestrator.core.identity import expected_uuid, identity_problem
from orchestrator.core.inventory import ClusterSpec
from orchestrator.core.keyids import resolve_key_id
from orchestrator.core.policy import RetryRule, classify
from orchestrator.core.selectors import Selection, discovery_problems, target_matches
from orchestrator.core.targets import CLUSTER_SCOPE, Outcome, SkipReason, TargetKey, TargetState
from orchestrator.errors import UserError
from orchestrator.ledger.records import TargetRow
from orchestrator.observe import events
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.models import ClusterInfo, KeyStore, KmsConfig

log = structlog.get_logger()

DISCOVERY_ATTEMPTS = 3
DISCOVERY_RETRY_S = 0.5  # times the attempt number; Retry-After wins, capped
DISCOVERY_RETRY_CAP_S = 5.0

ALL_SVMS = "*"
"""The stand-in SVM name of a `svms: all` cluster whose SVMs could not be discovered."""


@dataclass(frozen=True)
class Discovery:
    """What one cluster told us, or the error that stopped it."""

    cluster: str
    info: ClusterInfo | None = None
    configs: tuple[KmsConfig, ...] = ()
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
        if self.error is not None:
            return SkipReason.UNREACHABLE
        if self.identity_problem is not None:
            return SkipReason.IDENTITY_MISMATCH
        if self.info is not None and not self.info.supports_aws_kms_rekey:
            return SkipReason.UNSUPPORTED_VERSION
        return None


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
    for attempt in range(1, DISCOVERY_ATTEMPTS + 1):
        try:
            return await _discover(client, spec)
        except OntapError as err:
            retryable = classify(err).error_class is ErrorClass.RETRYABLE
            if attempt == DISCOVERY_ATTEMPTS or not retryable or err.kind is ErrorKind.CONNECT:
                raise
            delay = min(DISCOVERY_RETRY_CAP_S, err.retry_after or DISCOVERY_RETRY_S * attempt)
            await anyio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


async def _discover(client: OntapClient, spec: ClusterSpec) -> Discovery:
    name = spec.name
    info = await client.cluster_info()
    problem = _check_identity(spec, info)
    if problem is not None:  # ask a stranger nothing more
        return Discovery(name, info=info, identity_problem=problem)
    if not info.supports_aws_kms_rekey:
        return Discovery(name, info=info)
    try:
        configs, stores = await _readiness_reads(client)
    except OntapError as err:
        if not _readiness_refused(err):
            raise
        # The rekey needs only the configurations: the run goes on without the facts
        # (plan calls these targets `discovery_failed`, with the error).
        configs = tuple(await client.list_aws_kms(health=False))
        return Discovery(name, info=info, configs=configs, readiness_error=err)
    return Discovery(name, info=info, configs=configs, key_stores=stores)


async def _readiness_reads(
    client: OntapClient,
) -> tuple[tuple[KmsConfig, ...], tuple[KeyStore, ...]]:
    """The configurations with their health fields, and the key stores: the facts `plan`
    judges readiness by. `run` reads the same, so it never starts a canary or a wave with
    a target the plan would call not ready."""
    configs = tuple(await client.list_aws_kms(health=True))
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
    key_id: str  # template
    priority: int


def wanted_targets(spec: ClusterSpec, discovery: Discovery) -> Iterator[Wanted]:
    """The inventory's targets for this cluster, `svms: all` expanded from discovery."""
    explicit = {entry.name for entry in spec.svms}
    for entry in spec.svms:
        yield Wanted(entry.name, entry.key_id, entry.priority)
    if spec.all_svms:
        if discovery.skip_reason is not None:
            yield Wanted(ALL_SVMS, spec.key_id, spec.priority)
        for config in discovery.configs:
            if config.scope == "svm" and config.target_svm not in explicit:
                yield Wanted(config.target_svm, spec.key_id, spec.priority)
    if spec.include_cluster_scope:
        yield Wanted(CLUSTER_SCOPE, spec.key_id, spec.priority)


def target_rows(
    run_id: str, spec: ClusterSpec, discovery: Discovery, selection: Selection
) -> list[TargetRow]:
    """One row per selected target: PENDING, or already DONE when discovery decided it."""
    configs = {config.target_svm: config for config in discovery.configs}
    rows = []
    for wanted in wanted_targets(spec, discovery):
        if wanted.svm != ALL_SVMS and not target_matches(selection, spec, wanted.svm):
            continue
        rows.append(_row(run_id, spec, discovery, wanted, configs.get(wanted.svm)))
    return rows


def _row(
    run_id: str, spec: ClusterSpec, discovery: Discovery, wanted: Wanted, config: KmsConfig | None
) -> TargetRow:
    base = TargetRow(
        run_id=run_id,
        key=TargetKey(spec.name, wanted.svm),
        priority=wanted.priority,
        cluster_uuid=_recorded_uuid(discovery),
    )
    if (reason := discovery.skip_reason) is not None:
        return _skipped(base, reason, discovery)
    if config is None:
        return _skipped(base, SkipReason.NOT_CONFIGURED, discovery)
    intended = resolve_key_id(
        wanted.key_id, cluster=spec.name, svm=wanted.svm, current=config.key_id
    )
    return TargetRow(
        run_id=run_id,
        key=base.key,
        priority=wanted.priority,
        cluster_uuid=base.cluster_uuid,
        config_uuid=config.uuid,
        key_id_before=config.key_id,
        key_id_intended=intended,
    )


def _recorded_uuid(discovery: Discovery) -> str | None:
    """The uuid the ledger remembers for this entry: never a stranger's."""
    if discovery.info is None or discovery.identity_problem is not None:
        return None
    return discovery.info.uuid.lower()


def _skipped(base: TargetRow, reason: SkipReason, discovery: Discovery) -> TargetRow:
    err, rule = discovery.error, discovery.rule
    return TargetRow(
        run_id=base.run_id,
        key=base.key,
        priority=base.priority,
        cluster_uuid=base.cluster_uuid,
        state=TargetState.DONE,
        outcome=Outcome.SKIPPED.value,
        reason=reason.value,
        error_code=err.code if err else None,
        error_message=err.summary() if err else _skip_message(reason, discovery),
        error_class=rule.error_class.value if rule else None,
        error_hint=rule.hint if rule else None,
    )


def _skip_message(reason: SkipReason, discovery: Discovery) -> str | None:
    if reason is SkipReason.UNSUPPORTED_VERSION and discovery.info is not None:
        return f"ONTAP {discovery.info.version_full} has no AWS KMS rekey (needs 9.12 or later)"
    if reason is SkipReason.NOT_CONFIGURED:
        return "no AWS KMS configuration for this SVM on the cluster"
    if reason is SkipReason.IDENTITY_MISMATCH:
        return discovery.identity_problem
    return None


def require_selected_targets(
    selection: Selection, found: Mapping[str, Discovery], rows: Sequence[TargetRow]
) -> None:
    """Exit 2 (before any POST) when, after discovery, a selector matched nothing the
    clusters hold, or no target is selected at all: never a green run of nothing."""
    svms: dict[str, set[str]] = {name: set() for name in found}
    for row in rows:
        svms.setdefault(row.key.cluster, set()).add(row.key.svm)
    undiscovered = {name for name, names in svms.items() if ALL_SVMS in names}
    problems = discovery_problems(selection, svms, undiscovered)
    if problems:
        raise UserError(*problems)
