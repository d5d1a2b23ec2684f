"""Settling a POST whose fate is unknown, from the cluster's own records.

One listing of the cluster's jobs (every page) answers three questions at once: is there a
job of this attempt (by the calibrated description, or the configuration uuid anywhere in
a description), might there be one (a job nothing tells apart), and how long do ended job
records stay listed (witnessed, `core.settling.witnessed_lifetime`). Then the key store
(`svm_kek_rekey`, 9.16.1 and later only, the record of the target's provider) and, for an
external rekey only, the key id (an internal rekey never changes it). "No trace" proves
the POST was not submitted only when the search could have found it
(`core.settling.absence_proven`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.core.lifecycle import Event
from orchestrator.core.providers import Operation, Provider, key_store_type
from orchestrator.core.settling import (
    Calibration,
    Finding,
    absence_proven,
    search,
    witnessed_lifetime,
)
from orchestrator.core.targets import CLUSTER_SCOPE
from orchestrator.engine.jobs import job_facts
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.models import KeyStore

CLOCK_SKEW_S = 300.0  # jobs are searched from this long before the intent: clusters' clocks
# drift from the jump host's; earlier attempts' jobs are excluded by uuid, not by time
EARLIER_JOBS = "earlier_jobs"  # TargetRow.facts key: job uuids of this target's earlier attempts
RECORDED_JOBS_HORIZON_S = 3600.0  # earlier runs' jobs count as earlier attempts' (a search
# reaches CLOCK_SKEW_S before the intent): only runs that ended within this may hold one


@dataclass(frozen=True)
class Settlement:
    """What the settle found: the lifecycle event, the job (FOUND_JOB), the calibration
    with the record lifetime this listing measured, and how it decided."""

    event: Event
    how: str
    calibration: Calibration | None
    job_uuid: str | None = None


async def settle(
    client: OntapClient,
    row: TargetRow,
    calibration: Calibration | None,
    *,
    settle_window_s: float,
    ended_seen_at: Mapping[str, float],
) -> Settlement:
    """Decide what became of the POST recorded in `row` (raises OntapError on GET failure).

    `ended_seen_at`: the cluster's jobs this run saw ended, with the (local) time it first
    saw each ended: the witnesses of how long job records stay listed."""
    intent_at = row.intent_at or time.time()
    listed_at = time.time()
    jobs = [job_facts(job) for job in await client.find_jobs()]
    elapsed = time.time() - intent_at  # measured after the listing: the record's age bound
    if calibration is not None:
        witnessed = witnessed_lifetime((job.uuid for job in jobs), ended_seen_at, listed_at)
        calibration = calibration.with_lifetime(witnessed)
    found = search(
        jobs,
        calibration,
        config_uuid=row.config_uuid or "",
        svm=row.key.svm,
        earlier=earlier_jobs(row),
        since=intent_at - CLOCK_SKEW_S,
    )
    if found.finding is Finding.FOUND and found.job is not None:
        return Settlement(Event.FOUND_JOB, "job", calibration, found.job.uuid)
    store = await key_store_of(client, row.key.svm, row.provider_kind)
    if store is not None and store.state == "svm_kek_rekey":
        return Settlement(Event.FOUND_REKEY, "key_store", calibration)
    if await _key_changed(client, row):
        return Settlement(Event.FOUND_KEY, "key_id", calibration)
    if elapsed < settle_window_s:
        return Settlement(Event.TOO_EARLY, "window", calibration)  # it may still be queued
    if found.finding is Finding.AMBIGUOUS_RUNNING:
        # a job that may be ours is running: wait for it to end (the target keeps its
        # slot meanwhile, so the cluster's limit still bounds what may be our jobs)
        return Settlement(Event.TOO_EARLY, "ambiguous_job_running", calibration)
    if found.finding is Finding.AMBIGUOUS:
        return Settlement(Event.CANNOT_RULE_OUT, "ambiguous_job", calibration)
    if not absence_proven(calibration, elapsed):
        how = "uncalibrated" if calibration is None or not calibration.trusted else "expired"
        return Settlement(Event.CANNOT_RULE_OUT, how, calibration)
    return Settlement(Event.NOT_SUBMITTED, "search", calibration)


async def _key_changed(client: OntapClient, row: TargetRow) -> bool:
    """Whether the configuration now holds the new key this external rekey named.

    An internal rekey replaces the SVM's own KEK and leaves the cloud key id as it was:
    the key id proves nothing then, and is not read (jobs and key store only)."""
    if row.operation_kind is Operation.INTERNAL or row.key_id_before == row.key_id_intended:
        return False
    config = await client.get_key_manager(row.provider_kind, row.config_uuid or "", health=False)
    return config.key_id == row.key_id_intended


def remember_job(facts: dict[str, Any], job_uuid: str | None) -> dict[str, Any]:
    """`facts` with `job_uuid` added to the earlier attempts' jobs (kept in the ledger)."""
    if job_uuid is None or job_uuid in facts.get(EARLIER_JOBS, []):
        return facts
    return {**facts, EARLIER_JOBS: [*facts.get(EARLIER_JOBS, []), job_uuid]}


def with_recorded_jobs(row: TargetRow, recorded: Iterable[str]) -> TargetRow:
    """`row` with `recorded` (its target's jobs in earlier runs) among its earlier jobs.

    A job of another run (the other operation's rekey, or the same one run again) names
    the same configuration and may sit in the search's window: taken for this attempt's,
    it would end the target `rekeyed` on a rekey this run never made."""
    facts = row.facts
    for job_uuid in sorted(recorded):
        facts = remember_job(facts, job_uuid)
    return row if facts is row.facts else replace(row, facts=facts)


def earlier_jobs(row: TargetRow) -> frozenset[str]:
    return frozenset(row.facts.get(EARLIER_JOBS, []))


async def key_store_of(
    client: OntapClient, svm: str, provider: Provider = Provider.AWS
) -> KeyStore | None:
    """The provider's key store of this SVM (the cluster-scoped one for `-`), read from
    the cluster."""
    return key_store_for(await client.list_key_stores(svm=svm), svm, provider)


def key_store_for(
    stores: Iterable[KeyStore], svm: str, provider: Provider = Provider.AWS
) -> KeyStore | None:
    """The key store of this SVM among `stores` (the one without an SVM for `-`) whose
    `type` is the provider's (`aws`, `akv`, `gcp`, `barbican`); an SVM may also list its
    onboard or KMIP key store, which no cloud rekey touches."""
    wanted = None if svm == CLUSTER_SCOPE else svm
    mine = [store for store in stores if store.svm_name == wanted]
    kind = key_store_type(provider)
    return next((store for store in mine if store.type == kind), None)
