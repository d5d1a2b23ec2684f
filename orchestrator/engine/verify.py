"""Read-back after a rekey: the expected key id, a healthy configuration, and the key store
back to `active` (or without a `state`, as before 9.16.1). One read per call; the
procedure's loop waits and reads again.

The read and the judgement (`judge`) are apart. AWS configurations are read through the
cluster's `ReadBackBatcher` (one filtered collection GET per cluster for every target read
back together); the other providers' collections one configuration at a time
(`read_config`). The key store is read only where it can tell something: its `state`
exists from ONTAP 9.16.1, so on a cluster known to run an older version the batch leaves
the key-store GET out. The expected key id is the row's `key_id_intended`: the new key for
rekey-external, the key held before for rekey-internal (an internal rekey replaces the
SVM's own KEK and must leave the cloud key id as it was).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.core.lifecycle import Event, Reason
from orchestrator.core.providers import Operation, Provider
from orchestrator.engine.readback import BATCHED_PROVIDERS, ReadBackBatcher
from orchestrator.engine.settle import key_store_of
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.models import KeyManagerConfig, KeyStore

# The pause between reads and their limits: `core/backoff.py::WAITS` (READ_BACK*).
KEY_STORE_STATE_SINCE = (9, 16, 1)  # the key store's `state` (and so `svm_kek_rekey`)
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")
VERSION_FACT = "version"  # TargetRow.facts: the cluster's ONTAP version, from discovery


@dataclass(frozen=True)
class ReadBack:
    event: Event  # VERIFIED, VERIFY_PENDING or VERIFY_MISMATCH
    reason: Reason | None = None
    key_id_after: str | None = None
    key_store_state: str | None = None


async def read_back(
    batcher: ReadBackBatcher, client: OntapClient, row: TargetRow
) -> tuple[ReadBack, bool]:
    """One read-back (raises OntapError); also whether the key id changed to the intended
    one (evidence that an external rekey took effect)."""
    provider = row.provider_kind
    if provider in BATCHED_PROVIDERS:
        read = await batcher.read(
            row.config_uuid or "", provider=provider, key_store=key_store_tells(row)
        )
        return judge(read.config, read.key_store, row)
    config, store = await read_config(client, provider, row.config_uuid or "", row.key.svm)
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
