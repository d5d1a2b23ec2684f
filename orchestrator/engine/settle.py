"""Settling a POST whose fate is unknown, from the cluster's own records.

In order: a rekey job for this configuration started since the attempt began (the job
record lives about 300 s after it ends); else the key store in `svm_kek_rekey` (a rekey in
flight); else the configuration's key id changed to the intended one. Only when none of
these shows the POST and the job record would still exist is it proven that nothing was
submitted, and only then may the POST be sent again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from orchestrator.core.targets import CLUSTER_SCOPE
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.client import OntapClient, rekey_job_description
from orchestrator.ontap.models import Job, KeyStore

CLOCK_SKEW_S = 300.0  # jobs are searched from this long before the intent: clusters' clocks
# drift from the jump host's; earlier attempts' jobs are excluded by uuid, not by time
EARLIER_JOBS = "earlier_jobs"  # TargetRow.facts key: job uuids of this target's earlier attempts
JOB_RECORD_TTL_S = 300.0  # ONTAP deletes a job record about this long after it ends
TTL_MARGIN_S = 60.0

SettlementKind = Literal["submitted", "took_effect", "in_progress", "not_submitted", "unknown"]


@dataclass(frozen=True)
class Settlement:
    kind: SettlementKind
    how: str  # job | key_store | key_id | none
    job: Job | None = None


async def settle(client: OntapClient, row: TargetRow) -> Settlement:
    """Decide what became of the POST recorded in `row` (raises OntapError on GET failure)."""
    intent_at = row.intent_at or time.time()
    job = await _job_since(client, row.config_uuid or "", intent_at, _earlier_jobs(row))
    if job is not None:
        return Settlement("submitted", "job", job)
    store = await key_store_of(client, row.key.svm)
    if store is not None and store.state == "svm_kek_rekey":
        return Settlement("in_progress", "key_store")
    config = await client.get_aws_kms(row.config_uuid or "", health=False)
    if config.key_id == row.key_id_intended and row.key_id_before != row.key_id_intended:
        return Settlement("took_effect", "key_id")
    if time.time() - intent_at > JOB_RECORD_TTL_S - TTL_MARGIN_S:
        return Settlement("unknown", "none")  # a job may have come and gone unseen
    return Settlement("not_submitted", "job")


async def _job_since(
    client: OntapClient, config_uuid: str, intent_at: float, earlier: frozenset[str]
) -> Job | None:
    """The newest rekey job of this configuration that is not an earlier attempt's."""
    since = datetime.fromtimestamp(intent_at - CLOCK_SKEW_S, tz=UTC)
    jobs = await client.find_jobs(description=rekey_job_description(config_uuid), since=since)
    candidates = [job for job in jobs if job.uuid not in earlier]
    return max(candidates, key=_start_key, default=None)


def remember_job(facts: dict[str, Any], job_uuid: str | None) -> dict[str, Any]:
    """`facts` with `job_uuid` added to the earlier attempts' jobs (kept in the ledger)."""
    if job_uuid is None:
        return facts
    return {**facts, EARLIER_JOBS: [*facts.get(EARLIER_JOBS, []), job_uuid]}


def _earlier_jobs(row: TargetRow) -> frozenset[str]:
    return frozenset(row.facts.get(EARLIER_JOBS, []))


def _start_key(job: Job) -> float:
    return job.start_time.timestamp() if job.start_time else 0.0


async def key_store_of(client: OntapClient, svm: str) -> KeyStore | None:
    """The key store of this SVM (the cluster-scoped one for `-`), read from the cluster."""
    return key_store_for(await client.list_key_stores(svm=svm), svm)  # filtered: one record


def key_store_for(stores: Iterable[KeyStore], svm: str) -> KeyStore | None:
    """The key store of this SVM among `stores` (the one without an SVM for `-`)."""
    wanted = None if svm == CLUSTER_SCOPE else svm
    return next((store for store in stores if store.svm_name == wanted), None)
