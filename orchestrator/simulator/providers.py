"""The cloud key managers ONTAP rekeys: AWS KMS, Azure Key Vault, Google Cloud KMS,
Barbican (ontap-rest-notes.md section 2's table). One `Provider` per kind: its collection,
key-store type, key field, version gates and the codes its faults answer with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Gate = tuple[int, ...]


@dataclass(frozen=True)
class Provider:
    """What differs between the cloud key managers."""

    name: str  # aws | azure | gcp | barbican (fleet files, ground truth)
    collection: str  # the path segment under /api/security
    key_store_type: str  # the key store's `type`
    key_field: str | None  # the external rekey's required body field (None: no external)
    collection_since: Gate
    external_since: Gate | None
    internal_since: Gate
    not_configured_code: int
    external_failed_code: int  # "rekey failed on one or more nodes"
    reachability: str  # the advanced reachability field of the cloud service
    optional_fields: frozenset[str] = frozenset()  # more external rekey body fields

    def key_value(self, cluster: str, svm: str) -> str:
        """The initial key id (or GCP key name) of a configuration."""
        from orchestrator.simulator.model import stable_uuid  # model imports this module

        key = stable_uuid(cluster, "key", svm)
        if self.name == "azure":
            return f"https://{cluster}-vault.vault.azure.net/keys/{svm}/{key.replace('-', '')}"
        if self.name == "gcp":
            return f"key-{key[:8]}"
        return key

    def extra_fields(self) -> dict[str, Any]:
        """The provider's own non-advanced fields (simulated constants)."""
        return EXTRA_FIELDS[self.name]


AWS = Provider(
    "aws",
    "aws-kms",
    "aws",
    "key_id",
    (9, 12),
    (9, 12),
    (9, 12),
    65537926,
    65537919,
    "amazon_reachability",
)
AZURE = Provider(
    "azure",
    "azure-key-vaults",
    "akv",
    "key_id",
    (9, 8),
    (9, 11),
    (9, 10),
    65537120,
    65537919,
    "azure_reachability",
)
GCP = Provider(
    "gcp",
    "gcp-kms",
    "gcp",
    "key_name",
    (9, 9),
    (9, 11),
    (9, 10),
    65537721,
    65537729,
    "google_reachability",
    frozenset({"project_id", "key_ring_location", "key_ring_name"}),
)
BARBICAN = Provider(
    "barbican",
    "barbican-kms",
    "barbican",
    None,
    (9, 17),
    None,
    (9, 17),
    65539817,
    65539834,
    "barbican_reachability",
)
PROVIDERS = {p.name: p for p in (AWS, AZURE, GCP, BARBICAN)}

EXTRA_FIELDS: dict[str, dict[str, Any]] = {
    "aws": {
        "region": "us-east-1",
        "polling_period": 60,
        "timeout": 10,
        "service": "kms",
        "default_domain": "amazonaws.com",
        "host": "kms.us-east-1.amazonaws.com",
        "port": 443,
        "proxy_type": "http",
        "proxy_port": 0,
        "access_key_id": "AKIASIMULATEDKEY0001",
        "encryption_context": "",
        "skip_verify": False,
        "verify": True,
        "verify_host": True,
        "verify_ip": False,
    },
    "azure": {
        "name": "sim-akv",
        "client_id": "00000000-0000-4000-8000-00000000c11d",
        "tenant_id": "00000000-0000-4000-8000-0000000000aa",
        "authentication_method": "client_secret",
        "polling_period": 60,
        "timeout": 10,
        "proxy_type": "http",
        "proxy_port": 0,
        "verify_host": True,
    },
    "gcp": {
        "project_id": "sim-project",
        "key_ring_location": "global",
        "key_ring_name": "sim-ring",
        "polling_period": 60,
        "timeout": 10,
        "proxy_type": "http",
        "proxy_port": 0,
        "verify_host": True,
    },
    "barbican": {
        "name": "sim-barbican",
        "keystone_url": "https://keystone.example.com:5000/v3",
        "timeout": 10,
        "verify": True,
        "verify_host": True,
    },
}
