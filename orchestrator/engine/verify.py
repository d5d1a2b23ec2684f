"""Read-back after a rekey: the intended key id, a healthy configuration, and the key store
back to `active` (or without a `state`, as before 9.16.1). One read per call, through the
cluster's `ReadBackBatcher` (one filtered GET per cluster for every target read back
together); the procedure's loop waits and reads again.

The key store is read only where it can tell something: its `state` (`svm_kek_rekey`,
`active`, ...) exists from ONTAP 9.16.1; before, the record has no state and the verdict
never depends on it, so on a cluster known to run an older version the key-store GET is
left out of the batch."""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.core.lifecycle import Event, Reason
from orchestrator.engine.readback import ReadBackBatcher
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.models import KmsConfig

READ_BACK_TRIES = 3  # failed reads in a row, then `unverified: read_back_failed`
READ_BACK_PAUSE_S = 1.0
MAX_PENDING_READS = 120  # reads of a key store still in `svm_kek_rekey` (about 2 minutes)
KEY_STORE_STATE_SINCE = (9, 16, 1)  # the key store's `state` (and so `svm_kek_rekey`)
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
VERSION_FACT = "version"  # TargetRow.facts: the cluster's ONTAP version, from discovery


@dataclass(frozen=True)
class ReadBack:
    event: Event  # VERIFIED, VERIFY_PENDING or VERIFY_MISMATCH
    reason: Reason | None = None
    key_id_after: str | None = None
    key_store_state: str | None = None


async def read_back(batcher: ReadBackBatcher, row: TargetRow) -> tuple[ReadBack, bool]:
    """One read-back from the cluster's next batch (raises OntapError); also whether the
    key id changed to the intended one (evidence that the rekey took effect)."""
    read = await batcher.read(row.config_uuid or "", key_store=key_store_tells(row))
    config = read.config
    changed = config.key_id == row.key_id_intended and row.key_id_before != row.key_id_intended
    if (mismatch := _config_mismatch(config, row)) is not None:
        return ReadBack(Event.VERIFY_MISMATCH, mismatch, config.key_id), changed
    store = read.key_store
    state = store.state if store is not None else None
    if state == "svm_kek_rekey":
        return ReadBack(Event.VERIFY_PENDING, key_id_after=config.key_id), changed
    if state not in (None, "active"):
        reason = Reason.KEY_STORE_NOT_ACTIVE
        return ReadBack(Event.VERIFY_MISMATCH, reason, config.key_id, state), changed
    return ReadBack(Event.VERIFIED, key_id_after=config.key_id), changed


def _config_mismatch(config: KmsConfig, row: TargetRow) -> Reason | None:
    if config.key_id != row.key_id_intended:
        return Reason.KEY_ID_MISMATCH
    if config.cluster_state is False:
        return Reason.CONFIG_UNHEALTHY
    return None


def key_store_tells(row: TargetRow) -> bool:
    """Whether the key store's record can change the verdict: it has a `state` from 9.16.1
    on. An unknown version (no discovery facts) reads it: never skip what might tell."""
    version = row.facts.get(VERSION_FACT)
    parsed = _version(version) if isinstance(version, str) else None
    return parsed is None or parsed >= KEY_STORE_STATE_SINCE


def _version(text: str) -> tuple[int, int, int] | None:
    """`NetApp Release 9.14.1: ...` -> (9, 14, 1); `9.16.1P3` -> (9, 16, 1); None: no version."""
    match = _VERSION.search(text)
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)
