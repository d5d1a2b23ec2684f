"""`plan`: is a target ready to be rekeyed, and if not, why (pure decisions over facts)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NotReady(StrEnum):
    """Why `plan` says a target is not ready."""

    UNSUPPORTED_VERSION = "unsupported_version"  # the version lacks this provider's rotation
    NOT_CONFIGURED = "not_configured"  # no key manager configuration the run may rekey
    AUTH_FAILED = "auth_failed"  # the cluster refused the credentials
    UNREACHABLE = "unreachable"  # the cluster could not be reached
    TLS_FAILED = "tls_failed"  # certificate verification or handshake failed
    CONFIG_UNHEALTHY = "config_unhealthy"  # state.cluster_state is false
    KMS_UNREACHABLE = "kms_unreachable"  # the key manager unreachable from the cluster or a node
    KEYSTORE_INITIALIZING = "keystore_initializing"
    KEYSTORE_SWITCHING = "keystore_switching"
    KEYSTORE_DISABLING = "keystore_disabling"
    KEYSTORE_MIXED = "keystore_mixed"
    KEYSTORE_BLOCKED = "keystore_blocked"
    KEYSTORE_REKEY_RUNNING = "keystore_rekey_running"  # svm_kek_rekey: a rekey is in flight
    KEYSTORE_DISABLED = "keystore_disabled"
    DISCOVERY_FAILED = "discovery_failed"  # the cluster answered, but not usably
    IDENTITY_MISMATCH = "identity_mismatch"  # another cluster answers (uuid: or the ledger)
    INVALID_KEY = "invalid_key"  # the inventory's key has the wrong shape for the provider


NOT_READY_FACT = "not_ready"
"""The key of a run row's `facts` that holds its NotReady cause: discovery found the target
not ready (the same verdict as `plan`). Such a target never leads the canary or a wave."""

_KEY_STORE_STATES = {
    "initializing": NotReady.KEYSTORE_INITIALIZING,
    "switching": NotReady.KEYSTORE_SWITCHING,
    "disabling": NotReady.KEYSTORE_DISABLING,
    "mixed": NotReady.KEYSTORE_MIXED,
    "blocked": NotReady.KEYSTORE_BLOCKED,
    "svm_kek_rekey": NotReady.KEYSTORE_REKEY_RUNNING,
}


@dataclass(frozen=True)
class TargetFacts:
    """What `plan` learned about one configuration from its cluster."""

    cluster_state: bool | None = None
    amazon_reachable: bool | None = None
    unreachable_nodes: tuple[str, ...] = ()
    key_store_state: str | None = None
    key_store_enabled: bool | None = None


def readiness(facts: TargetFacts) -> NotReady | None:
    """None when the target is ready, else the first reason it is not."""
    if facts.key_store_enabled is False:
        return NotReady.KEYSTORE_DISABLED
    if facts.key_store_state in _KEY_STORE_STATES:
        return _KEY_STORE_STATES[facts.key_store_state]
    if facts.amazon_reachable is False or facts.unreachable_nodes:
        return NotReady.KMS_UNREACHABLE
    if facts.cluster_state is False:
        return NotReady.CONFIG_UNHEALTHY
    return None
