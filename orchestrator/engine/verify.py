"""Read-back after a rekey: the expected key id, a healthy configuration, and the key store
back to `active` (or without a `state`, as before 9.16.1). One read per call; the
procedure's loop waits and reads again.

The read (`read_config`) and the judgement (`judge`) are apart: the read takes the provider,
so a batcher can read many configurations of one provider's collection at once, and the
judgement is the same whoever read. The expected key id is the row's `key_id_intended`:
the new key for rekey-external, and the key held before for rekey-internal (discovery
writes `core.key_managers.expected_key_after` there: an internal rekey replaces the SVM's
own KEK and must leave the cloud key id as it was).
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.core.lifecycle import Event, Reason
from orchestrator.core.providers import Operation, Provider
from orchestrator.engine.settle import key_store_of
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.models import KeyManagerConfig, KeyStore

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
    one (evidence that an external rekey took effect)."""
    config, store = await read_config(client, row.provider_kind, row.config_uuid or "", row.key.svm)
    return judge(config, store, row)


async def read_config(
    client: OntapClient, provider: Provider, config_uuid: str, svm: str
) -> tuple[KeyManagerConfig, KeyStore | None]:
    """The configuration (with its health fields) and the provider's key store of `svm`."""
    config = await client.get_key_manager(provider, config_uuid, health=True)
    return config, await key_store_of(client, svm, provider)


def judge(
    config: KeyManagerConfig, store: KeyStore | None, row: TargetRow
) -> tuple[ReadBack, bool]:
    """The verdict on one read-back of `row`'s configuration (pure), and whether the key
    id changed to the new one (never for an internal rekey: it keeps the key id)."""
    external = row.operation_kind is Operation.EXTERNAL
    changed = (
        external
        and config.key_id == row.key_id_intended
        and row.key_id_before != row.key_id_intended
    )
    if (mismatch := _config_mismatch(config, row)) is not None:
        return ReadBack(Event.VERIFY_MISMATCH, mismatch, config.key_id), changed
    state = store.state if store is not None else None
    if state == "svm_kek_rekey":
        return ReadBack(Event.VERIFY_PENDING, key_id_after=config.key_id), changed
    if state not in (None, "active"):
        reason = Reason.KEY_STORE_NOT_ACTIVE
        return ReadBack(Event.VERIFY_MISMATCH, reason, config.key_id, state), changed
    return ReadBack(Event.VERIFIED, key_id_after=config.key_id), changed


def _config_mismatch(config: KeyManagerConfig, row: TargetRow) -> Reason | None:
    if config.key_id != row.key_id_intended:  # external: the new key; internal: unchanged
        return Reason.KEY_ID_MISMATCH
    if config.cluster_state is False:
        return Reason.CONFIG_UNHEALTHY
    return None
