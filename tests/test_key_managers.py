"""The engine's pure per-target decisions for key managers (issue 15)."""

from __future__ import annotations

from orchestrator.core.inventory import BasicAuth, ClusterSpec, SvmEntry, TlsSettings
from orchestrator.core.key_managers import (
    expected_key_after,
    provider_allowed,
    providers_to_discover,
    target_skip,
)
from orchestrator.core.providers import Operation, Provider
from orchestrator.core.targets import SkipReason

AWS, AZURE, GCP, BARBICAN = Provider.AWS, Provider.AZURE, Provider.GCP, Provider.BARBICAN


def spec(**kw: object) -> ClusterSpec:
    base: dict[str, object] = {
        "name": "c1",
        "base_url": "https://c1",
        "auth": BasicAuth("admin", "ONTAP_PASSWORD"),
        "tls": TlsSettings(),
        "key_id": "current",
    }
    return ClusterSpec(**(base | kw))  # type: ignore[arg-type]


def test_discovery_reads_only_the_providers_its_targets_may_use() -> None:
    """An SVM list reads the union of the entries' providers; `svms: all` adds the
    cluster's own; None anywhere means every collection."""
    listed = spec(
        svms=(
            SvmEntry("s1", "current", providers=(GCP,)),
            SvmEntry("s2", "current", providers=(AZURE,)),
        )
    )
    assert providers_to_discover(listed) == (AZURE, GCP)
    assert providers_to_discover(spec(all_svms=True, providers=(AWS,))) == (AWS,)
    assert providers_to_discover(spec(all_svms=True)) == (AWS, AZURE, GCP, BARBICAN)
    mixed = spec(svms=(SvmEntry("s1", "current"), SvmEntry("s2", "current", providers=(GCP,))))
    assert providers_to_discover(mixed) == (AWS, AZURE, GCP, BARBICAN)


def test_a_provider_the_inventory_does_not_allow_is_not_configured() -> None:
    """An Azure SVM on a cluster pinned to [aws] is skipped: not_configured, named."""
    skip = target_skip(AZURE, Operation.EXTERNAL, (9, 14, 1), (AWS,))
    assert skip is not None
    assert skip.reason is SkipReason.NOT_CONFIGURED
    assert "Azure Key Vault" in skip.message
    assert provider_allowed(None, BARBICAN)


def test_version_gates_per_provider_and_operation() -> None:
    """Azure external needs 9.11, internal 9.10; Barbican external never exists."""
    assert target_skip(AZURE, Operation.INTERNAL, (9, 10, 1), None) is None
    old = target_skip(AZURE, Operation.EXTERNAL, (9, 10, 1), None)
    assert old is not None
    assert old.reason is SkipReason.UNSUPPORTED_VERSION
    assert "9.11" in old.message
    never = target_skip(BARBICAN, Operation.EXTERNAL, (9, 17, 1), None)
    assert never is not None
    assert never.reason is SkipReason.UNSUPPORTED_VERSION
    assert target_skip(BARBICAN, Operation.INTERNAL, (9, 17, 1), None) is None


def test_an_internal_rekey_keeps_the_key_id_an_external_one_shows_the_intended() -> None:
    """The read-back's expected key: unchanged for internal, the intended one for external."""
    assert expected_key_after(Operation.INTERNAL, before="k0", intended="k1") == "k0"
    assert expected_key_after(Operation.EXTERNAL, before="k0", intended="k1") == "k1"
