"""`plan`: the read-only twin of a run. Discovery with health fields and key stores, then a
`ready` / `not_ready` verdict per target with the facts behind it. Sends no POST."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.core.errors import ErrorKind
from orchestrator.core.options import RunOptions, cluster_limit
from orchestrator.core.providers import PROVIDERS, Operation
from orchestrator.core.readiness import NOT_READY_FACT, NotReady, TargetFacts, readiness
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import Outcome, SkipReason, TargetState, Verdict
from orchestrator.core.waves import parse_waves, wave_sizes
from orchestrator.engine.discovery import Discovery, target_rows
from orchestrator.engine.pool import ClusterPool
from orchestrator.engine.recorder import row_with
from orchestrator.engine.scheduling import order_rows
from orchestrator.ledger.records import PlanEstimate, TargetRow
from orchestrator.ontap.models import KeyManagerConfig, KeyStore

DEFAULT_JOB_ESTIMATE_S = 5.0  # a rekey job's typical duration, for the time estimate

_SKIP_TO_NOT_READY = {
    SkipReason.AUTH_FAILED: NotReady.AUTH_FAILED,
    SkipReason.UNREACHABLE: NotReady.UNREACHABLE,
    SkipReason.TLS_FAILED: NotReady.TLS_FAILED,
    SkipReason.UNSUPPORTED_VERSION: NotReady.UNSUPPORTED_VERSION,
    SkipReason.NOT_CONFIGURED: NotReady.NOT_CONFIGURED,
    SkipReason.IDENTITY_MISMATCH: NotReady.IDENTITY_MISMATCH,
}


def plan_rows(
    run_id: str,
    pool: ClusterPool,
    found: dict[str, Discovery],
    selection: Selection,
    operation: Operation = Operation.EXTERNAL,
) -> list[TargetRow]:
    """Every selected target with its verdict (`outcome` ready / not_ready) and facts."""
    rows: list[TargetRow] = []
    for name, discovery in found.items():
        rows.extend(
            _verdict(row, discovery)
            for row in target_rows(run_id, pool[name].spec, discovery, selection, operation)
        )
    return rows


def _verdict(row: TargetRow, discovery: Discovery) -> TargetRow:
    if row.state is TargetState.DONE:  # decided by discovery: no request would be sent
        reason = _not_ready_from_done(row, discovery)
        facts = _cluster_facts(discovery) | _provider_facts(row)
        if row.error_message and reason is not NotReady.UNREACHABLE:
            facts.setdefault("cause", row.error_message)
        return replace(row, outcome=Verdict.NOT_READY.value, reason=reason.value, facts=facts)
    cause, facts = target_verdict(row, discovery)
    verdict = Verdict.READY if cause is None else Verdict.NOT_READY
    return replace(
        row,
        state=TargetState.DONE,
        outcome=verdict.value,
        reason=None if cause is None else cause.value,
        facts=facts,
    )


def target_verdict(row: TargetRow, discovery: Discovery) -> tuple[NotReady | None, dict[str, Any]]:
    """The plan's verdict on one discovered target (None: ready) and the facts behind it."""
    config = _config(discovery, row.config_uuid)
    store = _key_store(discovery, config) if config else None
    facts = _cluster_facts(discovery) | _provider_facts(row) | _target_facts(config, store)
    if discovery.readiness_error is not None:
        facts["error"] = discovery.readiness_error.summary()
        return NotReady.DISCOVERY_FAILED, facts
    return readiness(_facts(config, store)), facts


def with_readiness(
    rows: list[TargetRow], discovery: Discovery, *, skip_not_ready: bool
) -> list[TargetRow]:
    """A run's rows with the plan's verdict: a pending target the plan would call not ready
    keeps the cause in `facts[NOT_READY_FACT]` (it then starts after every ready one), or
    ends `skipped: not_ready` with `--skip-not-ready`."""
    return [_readied(row, discovery, skip_not_ready) for row in rows]


def _readied(row: TargetRow, discovery: Discovery, skip_not_ready: bool) -> TargetRow:
    if row.state is TargetState.DONE or discovery.readiness_error is not None:
        return row  # decided already, or the facts are unknown: the rekey itself will tell
    verdict, facts = target_verdict(row, discovery)
    if verdict is None:
        return row_with(row, facts=row.facts | facts)  # per ready target: the cheaper copy
    facts = row.facts | facts | {NOT_READY_FACT: verdict.value}
    if not skip_not_ready:
        return replace(row, facts=facts)
    return replace(
        row,
        state=TargetState.DONE,
        outcome=Outcome.SKIPPED.value,
        reason=SkipReason.NOT_READY.value,
        error_message=f"not ready: {verdict.value} (the plan's verdict; --skip-not-ready)",
        facts=facts,
    )


def _not_ready_from_done(row: TargetRow, discovery: Discovery) -> NotReady:
    if row.outcome == Outcome.FAILED.value:  # the inventory's key has the wrong shape
        return NotReady.INVALID_KEY
    return _not_ready_from_skip(row.reason, discovery)


def _provider_facts(row: TargetRow) -> dict[str, Any]:
    if row.provider is None:
        return {}
    return {"provider": row.provider, "operation": row.operation_kind.value}


def _not_ready_from_skip(reason: str | None, discovery: Discovery) -> NotReady:
    if discovery.error is not None and discovery.error.kind is ErrorKind.TLS:
        return NotReady.TLS_FAILED
    if discovery.error is not None and discovery.error.kind is ErrorKind.PROTOCOL:
        return NotReady.DISCOVERY_FAILED
    return _SKIP_TO_NOT_READY.get(SkipReason(reason or "unreachable"), NotReady.DISCOVERY_FAILED)


def _cluster_facts(discovery: Discovery) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if discovery.info is not None:
        facts["version"] = discovery.info.version_full
    if discovery.error is not None:
        facts["error"] = discovery.error.summary()
    return facts


def _config(discovery: Discovery, uuid: str | None) -> KeyManagerConfig | None:
    return discovery.configs_by_uuid.get(uuid) if uuid is not None else None


def _key_store(discovery: Discovery, config: KeyManagerConfig) -> KeyStore | None:
    """`key_store_for_config(config, discovery.key_stores)`, looked up in the cluster's
    index (tests/engine/test_discovery_rows.py holds the two equal)."""
    return discovery.key_stores_by_target.get((config.target_svm, config.key_store_type))


def _facts(config: KeyManagerConfig | None, store: KeyStore | None) -> TargetFacts:
    return TargetFacts(
        cluster_state=config.cluster_state if config else None,
        amazon_reachable=config.kms_reachable if config else None,  # the provider's own
        unreachable_nodes=config.unreachable_nodes if config else (),
        key_store_state=store.state if store else None,
        key_store_enabled=store.enabled if store else None,
    )


def _target_facts(config: KeyManagerConfig | None, store: KeyStore | None) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if config is not None:
        facts |= {
            "config_uuid": config.uuid,
            "key_id": config.key_id,
            "cluster_state": config.cluster_state,
            PROVIDERS[config.provider].reachability_field: config.kms_reachable,
            "ekmip_unreachable_nodes": list(config.unreachable_nodes),
        }
        if config.region is not None:
            facts["region"] = config.region
    if store is not None:
        facts |= {"key_store_state": store.state, "key_store_enabled": store.enabled}
    return facts


@dataclass(frozen=True)
class RunPreview:
    """What a run is about to do, shown before the first POST: every selected target (the
    pending ones in start order, ready first), the waves and the duration estimate."""

    rows: list[TargetRow]
    pending: list[TargetRow]
    estimate: PlanEstimate

    @property
    def clusters(self) -> int:
        return len({row.key.cluster for row in self.pending})


def preview(rows: list[TargetRow], pool: ClusterPool, options: RunOptions) -> RunPreview:
    """The preview of a run over its discovered rows (the same order and waves `rotate` uses)."""
    pending = order_rows(
        [row for row in rows if row.state is not TargetState.DONE], emergency=options.emergency
    )
    return RunPreview(rows, pending, estimate_ordered(pending, pool, options))


def estimate(
    rows: list[TargetRow],
    pool: ClusterPool,
    options: RunOptions,
    job_s: float = DEFAULT_JOB_ESTIMATE_S,
) -> PlanEstimate:
    """The waves a run would use for the plan's ready targets, and a duration estimate."""
    ready = order_rows(
        [row for row in rows if row.verdict is Verdict.READY], emergency=options.emergency
    )
    return estimate_ordered(ready, pool, options, job_s)


def estimate_ordered(
    ordered: list[TargetRow],
    pool: ClusterPool,
    options: RunOptions,
    job_s: float = DEFAULT_JOB_ESTIMATE_S,
) -> PlanEstimate:
    """The waves of `ordered` targets and a duration estimate, wave by wave.

    Each wave takes as long as its busiest cluster (targets / per-cluster limit, rounded
    up, times a job) or the global limit, whichever is slower.
    """
    sizes = wave_sizes(len(ordered), parse_waves(options.waves)) if ordered else []
    seconds, start = 0.0, 0
    for size in sizes:
        seconds += _wave_seconds(ordered[start : start + size], pool, options, job_s)
        start += size
    return PlanEstimate(len(ordered), tuple(sizes), job_s, round(seconds, 1))


def _wave_seconds(
    wave: list[TargetRow], pool: ClusterPool, options: RunOptions, job_s: float
) -> float:
    per_cluster: dict[str, int] = {}
    for row in wave:
        per_cluster[row.key.cluster] = per_cluster.get(row.key.cluster, 0) + 1
    rounds = max(
        math.ceil(count / cluster_limit(options, pool[name].spec.per_cluster))
        for name, count in per_cluster.items()
    )
    return max(rounds, math.ceil(len(wave) / max(1, options.concurrency))) * job_s
