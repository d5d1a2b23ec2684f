"""Read-back after a rekey: the intended key id, a healthy configuration, and the key store
back to `active` (or without a `state`, as before 9.16.1). One read per call; the
procedure's loop waits and reads again."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.core.lifecycle import Event, Reason
from orchestrator.engine.settle import key_store_of
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.models import KmsConfig

READ_BACK_TRIES = 3  # failed reads in a row, then `unverified: read_back_failed`
READ_BACK_PAUSE_S = 1.0
MAX_PENDING_READS = 120  # reads of a key store still in `svm_kek_rekey` (about 2 minutes)


@dataclass(frozen=True)
class ReadBack:
    event: Event  # VERIFIED, VERIFY_PENDING or VERIFY_MISMATCH
    reason: Reason | None = None
    key_id_after: str | None = None
    key_store_state: str | None = None


async def read_back(client: OntapClient, row: TargetRow) -> tuple[ReadBack, bool]:
    """One read-back (raises OntapError); also whether the key id changed to the intended
    one (evidence that the rekey took effect)."""
    config = await client.get_aws_kms(row.config_uuid or "", health=True)
    changed = config.key_id == row.key_id_intended and row.key_id_before != row.key_id_intended
    if (mismatch := _config_mismatch(config, row)) is not None:
        return ReadBack(Event.VERIFY_MISMATCH, mismatch, config.key_id), changed
    store = await key_store_of(client, row.key.svm)
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
