"""Cloud key managers and their two rotations, as one table (reference notes, section 2).

A target is one key manager configuration of a `Provider`; a run performs one `Operation`
on it. Which (provider, operation) pairs ONTAP offers, from which version, at which path,
with which body, and which key store `type` stands for the provider: all of it is data
below, read by the client (paths, bodies), the engine (version gates) and the policy.

    provider  collection                        external  internal  key store type
    aws       /api/security/aws-kms             9.12      9.12      aws
    azure     /api/security/azure-key-vaults    9.11      9.10      akv
    gcp       /api/security/gcp-kms             9.11      9.10      gcp
    barbican  /api/security/barbican-kms        -         9.17      barbican

Rekey endpoints are `<collection>/{uuid}/rekey-external` and `.../rekey-internal`.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

Version = tuple[int, int]
"""ONTAP `generation.major` (9.12); the minor release never changes an API gate."""


class Provider(StrEnum):
    """The cloud key manager a configuration uses."""

    AWS = "aws"  # AWS KMS
    AZURE = "azure"  # Azure Key Vault (AKV)
    GCP = "gcp"  # Google Cloud KMS
    BARBICAN = "barbican"  # OpenStack Barbican KMS


class Operation(StrEnum):
    """The two rotations ONTAP offers on a cloud key manager."""

    EXTERNAL = "external"  # re-wrap under a new or re-versioned cloud key (a key id is sent)
    INTERNAL = "internal"  # replace the SVM's own KEK (no body; the key id stays the same)


@dataclass(frozen=True)
class ProviderSpec:
    """What the tool knows of one provider's REST resources."""

    provider: Provider
    collection: str  # the configurations' collection path
    collection_since: Version  # the first version that serves the collection
    key_store_type: str  # `type` of its record in /api/security/key-stores
    title: str  # how ONTAP's documentation names it
    cli: str  # the word in `security key-manager external <cli> ...`
    key_field: str  # the record's (and the external body's) key identifier field
    reachability_field: str  # the advanced cluster-wide reachability object
    has_ekmip: bool  # whether records carry per-node `ekmip_reachability`


PROVIDERS: Mapping[Provider, ProviderSpec] = MappingProxyType(
    {
        Provider.AWS: ProviderSpec(
            Provider.AWS,
            "/api/security/aws-kms",
            (9, 12),
            "aws",
            "AWS KMS",
            "aws",
            "key_id",
            "amazon_reachability",
            True,
        ),
        Provider.AZURE: ProviderSpec(
            Provider.AZURE,
            "/api/security/azure-key-vaults",
            (9, 8),
            "akv",
            "Azure Key Vault",
            "azure",
            "key_id",
            "azure_reachability",
            True,
        ),
        Provider.GCP: ProviderSpec(
            Provider.GCP,
            "/api/security/gcp-kms",
            (9, 9),
            "gcp",
            "Google Cloud KMS",
            "gcp",
            "key_name",
            "google_reachability",
            True,
        ),
        Provider.BARBICAN: ProviderSpec(
            Provider.BARBICAN,
            "/api/security/barbican-kms",
            (9, 17),
            "barbican",
            "Barbican KMS",
            "barbican",
            "key_id",
            "barbican_reachability",
            False,
        ),
    }
)

REKEY_SINCE: Mapping[tuple[Provider, Operation], Version] = MappingProxyType(
    {
        (Provider.AWS, Operation.EXTERNAL): (9, 12),
        (Provider.AWS, Operation.INTERNAL): (9, 12),
        (Provider.AZURE, Operation.EXTERNAL): (9, 11),
        (Provider.AZURE, Operation.INTERNAL): (9, 10),
        (Provider.GCP, Operation.EXTERNAL): (9, 11),
        (Provider.GCP, Operation.INTERNAL): (9, 10),
        (Provider.BARBICAN, Operation.INTERNAL): (9, 17),
    }
)
"""Every rekey endpoint ONTAP has, with its first version; a pair not here does not exist."""

GCP_OPTIONAL_FIELDS = ("project_id", "key_ring_location", "key_ring_name")
"""What a GCP rekey-external may send besides `key_name` (the CLI's -project-id etc.)."""


def spec(provider: Provider) -> ProviderSpec:
    """The provider's row of the table."""
    return PROVIDERS[provider]


def is_rekey_pair(provider: Provider, operation: Operation) -> bool:
    """True when ONTAP has this rotation for this provider at all (any version)."""
    return (provider, operation) in REKEY_SINCE


def min_rekey_version(provider: Provider, operation: Operation) -> Version | None:
    """The first ONTAP version with this rekey endpoint; None when there is none."""
    return REKEY_SINCE.get((provider, operation))


def rekey_supported(provider: Provider, operation: Operation, version: Iterable[int]) -> bool:
    """True when a cluster at `version` (generation, major[, minor]) has this endpoint."""
    since = min_rekey_version(provider, operation)
    return since is not None and _major(version) >= since


def serves_collection(provider: Provider, version: Iterable[int]) -> bool:
    """True when a cluster at `version` serves the provider's configuration collection."""
    return _major(version) >= PROVIDERS[provider].collection_since


def unsupported_reason(provider: Provider, operation: Operation, version: Iterable[int]) -> str:
    """Why a rekey cannot run here, in one line (for `skipped: unsupported_version`)."""
    title = PROVIDERS[provider].title
    since = min_rekey_version(provider, operation)
    shown = ".".join(map(str, _major(version)))
    if since is None:
        return f"{title} has no rekey-{operation} (ONTAP offers only rekey-internal for it)"
    return (
        f"{title} rekey-{operation} needs ONTAP {since[0]}.{since[1]} or later (cluster: {shown})"
    )


def collection_path(provider: Provider) -> str:
    """`/api/security/<collection>` of the provider."""
    return PROVIDERS[provider].collection


def config_path(provider: Provider, uuid: str) -> str:
    """The path of one configuration (the uuid must already be one safe path segment)."""
    return f"{PROVIDERS[provider].collection}/{uuid}"


def rekey_path(provider: Provider, uuid: str, operation: Operation) -> str:
    """`<collection>/{uuid}/rekey-external|rekey-internal` (uuid: one safe path segment).

    Raises ValueError for a pair ONTAP does not have (Barbican rekey-external).
    """
    if not is_rekey_pair(provider, operation):
        raise ValueError(f"{PROVIDERS[provider].title} has no rekey-{operation} endpoint")
    return f"{config_path(provider, uuid)}/rekey-{operation}"


def rekey_job_description(provider: Provider, uuid: str, operation: Operation) -> str:
    """The `description` ONTAP gives the job of a REST rekey of this configuration."""
    return f"POST {rekey_path(provider, uuid, operation)}"


def key_store_type(provider: Provider) -> str:
    """The `type` of the provider's record in `/api/security/key-stores`."""
    return PROVIDERS[provider].key_store_type


def provider_of_key_store_type(value: str) -> Provider | None:
    """The provider a key store `type` stands for; None for okm, kmip, ikp and others."""
    return next((p for p, s in PROVIDERS.items() if s.key_store_type == value), None)


@dataclass(frozen=True)
class IntendedKey:
    """The key a rekey-external names: AWS/Azure `key_id`, GCP `key_name` (+ ring fields).

    `key` is the filled value (no template, never `current`). The GCP fields are None
    when not given: ONTAP then keeps the configured project and key ring.
    """

    key: str
    project_id: str | None = None
    key_ring_location: str | None = None
    key_ring_name: str | None = None

    def gcp_fields(self) -> dict[str, str]:
        """The optional GCP fields that are set, by their REST names."""
        values = (self.project_id, self.key_ring_location, self.key_ring_name)
        return {name: v for name, v in zip(GCP_OPTIONAL_FIELDS, values, strict=True) if v}


def rekey_body(
    provider: Provider, operation: Operation, key: IntendedKey | None
) -> dict[str, str] | None:
    """The JSON body of the rekey POST; None for rekey-internal (it sends no body).

    Raises ValueError for a pair ONTAP does not have, or an external rekey without a key.
    """
    if not is_rekey_pair(provider, operation):
        raise ValueError(f"{PROVIDERS[provider].title} has no rekey-{operation} endpoint")
    if operation is Operation.INTERNAL:
        return None
    if key is None or not key.key:
        raise ValueError(f"rekey-external of {PROVIDERS[provider].title} needs a key")
    if provider is Provider.GCP:
        return {"key_name": key.key, **key.gcp_fields()}
    return {"key_id": key.key}


def parse_providers(values: Iterable[str]) -> frozenset[Provider]:
    """Provider names as a set; ValueError names the first unknown one."""
    known = {p.value for p in Provider}
    out = set()
    for value in values:
        if value not in known:
            raise ValueError(f"unknown provider {value!r} (use {', '.join(sorted(known))})")
        out.add(Provider(value))
    return frozenset(out)


def _major(version: Iterable[int]) -> Version:
    numbers = tuple(version)
    return (numbers[0], numbers[1])
