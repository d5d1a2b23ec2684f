"""ONTAP records as the client parses them, for tests that build discoveries by hand."""

from __future__ import annotations

from orchestrator.core.providers import Provider
from orchestrator.ontap.models import GcpKeyRing, KeyManagerConfig

NO_RING = GcpKeyRing(None, None, None)


def key_manager_config(
    provider: Provider, svm: str, key: str, uuid: str = "u1", ring: GcpKeyRing = NO_RING
) -> KeyManagerConfig:
    """An SVM-scoped configuration, enabled and reachable (`ring` only for GCP)."""
    return KeyManagerConfig(
        provider=provider,
        uuid=uuid,
        scope="svm",
        svm_name=svm,
        svm_uuid=None,
        key_id=key,
        gcp=ring if provider is Provider.GCP else None,
        region=None,
        cluster_state=True,
        state_code=None,
        state_message=None,
        kms_reachable=True,
        kms_message=None,
        ekmip=(),
    )
