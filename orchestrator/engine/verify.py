"""Read-back after a successful job: the intended key id, a healthy configuration, and the
key store back to `active`."""

from __future__ import annotations

from dataclasses import dataclass

import anyio

from orchestrator.core.errors import OntapError
from orchestrator.core.targets import Outcome
from orchestrator.engine.settle import key_store_of
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.models import KmsConfig

READ_BACK_TRIES = 3
READ_BACK_PAUSE_S = 1.0


@dataclass(frozen=True)
class Verification:
    outcome: Outcome  # REKEYED or UNVERIFIED
    reason: str | None = None
    error: OntapError | None = None
    key_id_after: str | None = None


async def verify(client: OntapClient, row: TargetRow) -> Verification:
    """REKEYED when the read-back confirms the rekey, else UNVERIFIED with the reason."""
    last_error: OntapError | None = None
    for attempt in range(READ_BACK_TRIES):
        if attempt:
            await anyio.sleep(READ_BACK_PAUSE_S)
        try:
            result = await _read_back(client, row)
        except OntapError as err:
            last_error = err
            continue
        if result is not None:
            return result
    return Verification(Outcome.UNVERIFIED, "read_back_failed", last_error)


async def _read_back(client: OntapClient, row: TargetRow) -> Verification | None:
    """A verdict, or None when the key store is still finishing the rekey."""
    config = await client.get_aws_kms(row.config_uuid or "", health=True)
    if (mismatch := _config_mismatch(config, row)) is not None:
        return Verification(Outcome.UNVERIFIED, mismatch, key_id_after=config.key_id)
    store = await key_store_of(client, row.key.svm)
    state = store.state if store is not None else None
    if state == "svm_kek_rekey":
        return None
    if state not in (None, "active"):
        return Verification(Outcome.UNVERIFIED, f"key_store_{state}", key_id_after=config.key_id)
    return Verification(Outcome.REKEYED, key_id_after=config.key_id)


def _config_mismatch(config: KmsConfig, row: TargetRow) -> str | None:
    if config.key_id != row.key_id_intended:
        return "key_id_mismatch"
    if config.cluster_state is False:
        return "config_unhealthy"
    return None
