"""Key ids per provider (issue 15): resolution of templates and `current`, shape checks,
and the pure decision that fails a target whose resolved key has the wrong shape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.inventory import GcpKeyTemplates
from orchestrator.core.keyids import (
    check_intended_key,
    intended_key,
    key_shape_problem,
    resolve_key_id,
)
from orchestrator.core.providers import IntendedKey, Provider

AWS, AZURE, GCP, BARBICAN = Provider.AWS, Provider.AZURE, Provider.GCP, Provider.BARBICAN
UUID = "1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    "value",
    [
        UUID,
        f"arn:aws:kms:us-east-1:111122223333:key/{UUID}",
        "alias/ontap-kek",
        "arn:aws:kms:us-east-1:111122223333:alias/ontap-kek",
        "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/" + UUID,
        "mrk-1234abcd12ab34cd56ef1234567890ab",
    ],
)
def test_aws_accepts_its_four_forms(value: str) -> None:
    """Key id, key ARN, alias name, alias ARN (and multi-region ids) are AWS keys."""
    assert key_shape_problem(AWS, value) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("https://v1.vault.azure.net/keys/kek", "a URL is not an AWS KMS key"),
        ("projects/p/locations/l/keyRings/r/cryptoKeys/k", "Google Cloud key path"),
        ("arn:aws:s3:::bucket", "not a KMS ARN"),
        ("alias/with space", "without blanks"),
        ("", "not an AWS KMS key"),
    ],
)
def test_aws_refuses_what_can_be_no_aws_key(value: str, words: str) -> None:
    """Another cloud's key, another service's ARN, blanks: refused with what to write."""
    problem = key_shape_problem(AWS, value)
    assert problem is not None
    assert words in problem


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://vault-1.vault.azure.net/keys/ontap-kek", True),
        ("https://vault-1.vault.azure.net/keys/ontap-kek/0123456789abcdef0123456789abcdef", True),
        ("https://gov-vault.vault.usgovcloudapi.net/keys/kek", True),
        ("https://vault-1.vault.azure.net/secrets/ontap-kek", False),
        ("http://vault-1.vault.azure.net/keys/ontap-kek", False),
        ("https://vault-1.example.com/keys/ontap-kek", False),
        ("ontap-kek", False),
        (f"arn:aws:kms:us-east-1:111122223333:key/{UUID}", False),
    ],
)
def test_azure_needs_a_vault_key_url(value: str, ok: bool) -> None:
    """Only https://<vault>.vault.azure.net/keys/<name>[/<version>] (and sovereign clouds)."""
    assert (key_shape_problem(AZURE, value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [("ontap-kek", True), ("kek_2026", True), ("a/b", False), ("with.dot", False), ("", False)],
)
def test_gcp_key_name_is_a_bare_name(value: str, ok: bool) -> None:
    """A GCP key_name is 1-63 letters, digits, '_' or '-': no '/', no resource path."""
    assert (key_shape_problem(GCP, value) is None) is ok


def test_barbican_has_no_external_key_to_check() -> None:
    """Barbican rotates only internally: nothing is ever sent, nothing to refuse."""
    assert key_shape_problem(BARBICAN, "anything at all") is None


def test_intended_key_current_and_templates_per_provider() -> None:
    """`current` takes the configured key; templates fill {cluster} and {svm}; GCP uses
    key_name and fills its ring fields too."""
    gcp = GcpKeyTemplates("current", "proj-{cluster}", None, "ring-{svm}")
    aws = intended_key(
        AWS, key_id="alias/{cluster}-{svm}", gcp=gcp, cluster="c1", svm="s1", current="k0"
    )
    assert aws == IntendedKey("alias/c1-s1")
    same = intended_key(AZURE, key_id="current", gcp=gcp, cluster="c1", svm="s1", current="k0")
    assert same == IntendedKey("k0")
    google = intended_key(GCP, key_id="alias/x", gcp=gcp, cluster="c1", svm="s1", current="kek-0")
    assert google == IntendedKey("kek-0", project_id="proj-c1", key_ring_name="ring-s1")


def test_a_wrong_shape_after_discovery_fails_the_target_with_a_hint() -> None:
    """An Azure target given an AWS alias: a `failed` error naming key_id, fatal, no code."""
    error = check_intended_key(AZURE, IntendedKey("alias/ontap-kek"))
    assert error is not None
    assert (error.code, error.error_class) == (None, "fatal")
    assert "key_id" in error.message
    assert "azure" in error.message
    assert "nothing was sent" in error.hint


def test_gcp_ring_fields_are_checked_after_discovery_too() -> None:
    """A GCP key_ring_name with '/' fails the target, naming key_name's family."""
    error = check_intended_key(GCP, IntendedKey("kek", key_ring_name="a/b"))
    assert error is not None
    assert "key_ring_name" in error.message
    assert check_intended_key(GCP, IntendedKey("kek", project_id="p-1")) is None


NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=24)
VERSIONS = st.text(alphabet="0123456789abcdef", min_size=32, max_size=32)  # Azure: 32 hex


@given(vault=NAMES.filter(lambda v: 3 <= len(v) <= 24), name=NAMES, version=st.none() | VERSIONS)
def test_every_well_formed_azure_url_passes_and_its_secret_twin_fails(
    vault: str, name: str, version: str | None
) -> None:
    """Property: a vault key URL built from valid parts passes; /secrets/ never does."""
    tail = f"/{version}" if version else ""
    url = f"https://{vault}.vault.azure.net/keys/{name}{tail}"
    assert key_shape_problem(AZURE, url) is None
    assert key_shape_problem(AZURE, url.replace("/keys/", "/secrets/")) is not None


@given(
    template=st.text(alphabet="ab/-{}", max_size=12).filter(lambda t: "{" not in t and "}" not in t)
)
def test_a_template_without_placeholders_resolves_to_itself(template: str) -> None:
    """Property: no placeholder, no change (only {cluster} and {svm} are ever replaced)."""
    if template != "current":
        assert resolve_key_id(template, cluster="c", svm="s", current="k") == template


def test_a_current_key_is_not_judged_but_gcp_ring_fields_still_are() -> None:
    """`current` sends what ONTAP holds (whatever its shape); ring fields come from us."""
    assert check_intended_key(AZURE, IntendedKey("legacy-id"), key_is_current=True) is None
    bad_ring = IntendedKey("k/legacy", key_ring_name="a/b")
    error = check_intended_key(GCP, bad_ring, key_is_current=True)
    assert error is not None
    assert "key_ring_name" in error.message
