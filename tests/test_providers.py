"""The key manager table (issue 15): pairs, version gates, paths, bodies, key store types."""

from __future__ import annotations

import pytest

from orchestrator.core.providers import (
    IntendedKey,
    Operation,
    Provider,
    collection_path,
    is_rekey_pair,
    key_store_type,
    min_rekey_version,
    parse_providers,
    provider_of_key_store_type,
    rekey_body,
    rekey_job_description,
    rekey_path,
    rekey_supported,
    serves_collection,
    unsupported_reason,
)

AWS, AZURE, GCP, BARBICAN = Provider.AWS, Provider.AZURE, Provider.GCP, Provider.BARBICAN
EXT, INT = Operation.EXTERNAL, Operation.INTERNAL


@pytest.mark.parametrize(
    ("provider", "operation", "since"),
    [
        (AWS, EXT, (9, 12)),
        (AWS, INT, (9, 12)),
        (AZURE, EXT, (9, 11)),
        (AZURE, INT, (9, 10)),
        (GCP, EXT, (9, 11)),
        (GCP, INT, (9, 10)),
        (BARBICAN, INT, (9, 17)),
        (BARBICAN, EXT, None),
    ],
)
def test_minimum_versions(
    provider: Provider, operation: Operation, since: tuple[int, int] | None
) -> None:
    """Each pair has its documented first version; Barbican rekey-external does not exist."""
    assert min_rekey_version(provider, operation) == since
    assert is_rekey_pair(provider, operation) is (since is not None)
    if since is not None:
        major, minor = since
        assert rekey_supported(provider, operation, (major, minor, 0))
        assert rekey_supported(provider, operation, (major, minor + 5, 1))
        assert not rekey_supported(provider, operation, (major, minor - 1, 9))
    else:
        assert not rekey_supported(provider, operation, (9, 99, 0))


def test_unsupported_reason_names_the_version_or_the_missing_endpoint() -> None:
    """The skip message says which version is needed, or that there is no such rekey."""
    assert "9.11" in unsupported_reason(AZURE, EXT, (9, 10, 1))
    assert "9.10" in unsupported_reason(AZURE, EXT, (9, 10, 1))
    assert "no rekey-external" in unsupported_reason(BARBICAN, EXT, (9, 17, 1))


@pytest.mark.parametrize(
    ("provider", "collection", "store_type"),
    [
        (AWS, "/api/security/aws-kms", "aws"),
        (AZURE, "/api/security/azure-key-vaults", "akv"),
        (GCP, "/api/security/gcp-kms", "gcp"),
        (BARBICAN, "/api/security/barbican-kms", "barbican"),
    ],
)
def test_paths_and_key_store_types(provider: Provider, collection: str, store_type: str) -> None:
    """Collection, rekey paths, job description and key store type per provider."""
    assert collection_path(provider) == collection
    assert key_store_type(provider) == store_type
    assert provider_of_key_store_type(store_type) is provider
    assert rekey_path(provider, "u1", INT) == f"{collection}/u1/rekey-internal"
    assert rekey_job_description(provider, "u1", INT) == f"POST {collection}/u1/rekey-internal"


def test_aws_paths_match_todays_endpoint() -> None:
    """AWS rekey-external keeps today's path and job description."""
    assert rekey_path(AWS, "u1", EXT) == "/api/security/aws-kms/u1/rekey-external"
    assert rekey_job_description(AWS, "u1", EXT) == ("POST /api/security/aws-kms/u1/rekey-external")


def test_no_path_or_body_for_barbican_external() -> None:
    """A pair ONTAP lacks is a programming error, never a request."""
    with pytest.raises(ValueError, match="no rekey-external"):
        rekey_path(BARBICAN, "u1", EXT)
    with pytest.raises(ValueError, match="no rekey-external"):
        rekey_body(BARBICAN, EXT, IntendedKey("k"))


def test_collections_by_version() -> None:
    """Barbican's collection exists from 9.17 only; Azure and GCP long before."""
    assert not serves_collection(BARBICAN, (9, 16, 1))
    assert serves_collection(BARBICAN, (9, 17, 1))
    assert serves_collection(AZURE, (9, 12, 1))
    assert serves_collection(GCP, (9, 12, 1))
    assert not serves_collection(AWS, (9, 11, 1))


def test_external_bodies_per_provider() -> None:
    """AWS/Azure send key_id; GCP key_name plus only the ring fields that are set."""
    key = IntendedKey("k1")
    assert rekey_body(AWS, EXT, key) == {"key_id": "k1"}
    url = "https://v1.vault.azure.net/keys/kek"
    assert rekey_body(AZURE, EXT, IntendedKey(url)) == {"key_id": url}
    assert rekey_body(GCP, EXT, key) == {"key_name": "k1"}
    full = IntendedKey("k1", project_id="p-1", key_ring_location="global", key_ring_name="r")
    assert rekey_body(GCP, EXT, full) == {
        "key_name": "k1",
        "project_id": "p-1",
        "key_ring_location": "global",
        "key_ring_name": "r",
    }


@pytest.mark.parametrize("provider", list(Provider))
def test_internal_sends_no_body(provider: Provider) -> None:
    """Every rekey-internal has no body, whatever key the target would have."""
    assert rekey_body(provider, INT, IntendedKey("ignored")) is None
    assert rekey_body(provider, INT, None) is None


def test_external_without_a_key_is_refused() -> None:
    """An external rekey needs a key: None or empty is a programming error."""
    for key in (None, IntendedKey("")):
        with pytest.raises(ValueError, match="needs a key"):
            rekey_body(AWS, EXT, key)


def test_parse_providers() -> None:
    """Names become a set; an unknown one is named."""
    assert parse_providers(["gcp", "aws", "gcp"]) == {GCP, AWS}
    with pytest.raises(ValueError, match="'kmip'"):
        parse_providers(["kmip"])
