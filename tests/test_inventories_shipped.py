"""Every inventory shipped in inventories/ validates, and the example shows every feature."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from orchestrator.config import load
from orchestrator.core.inventory import BasicAuth, CertAuth, TokenAuth

INVENTORIES = Path(__file__).resolve().parent.parent / "inventories"
SHIPPED = sorted([*INVENTORIES.rglob("*.yaml"), *INVENTORIES.rglob("*.yml")])


class AnyVariableSet(Mapping[str, str]):
    """An environment in which every variable is set (the shipped files name several)."""

    def __getitem__(self, name: str) -> str:
        return "example"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __contains__(self, name: object) -> bool:
        return True


def test_there_are_shipped_inventories() -> None:
    assert INVENTORIES / "example.yaml" in SHIPPED
    assert len(SHIPPED) >= 2


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(INVENTORIES)))
def test_shipped_inventory_validates(path: Path) -> None:
    """Loads without error; the only warnings are file modes git cannot keep."""
    result = load(path, environ=AnyVariableSet())
    assert result.inventory.clusters
    assert all("lets group or others read it" in warning for warning in result.warnings)


def test_the_example_shows_every_feature() -> None:
    """3+ groups, 5+ clusters, every auth style and key_id style, both svms forms."""
    result = load(INVENTORIES / "example.yaml", environ=AnyVariableSet())
    clusters = result.inventory.clusters
    assert len(result.groups) >= 3
    assert len(clusters) >= 5
    auths = [spec.auth for spec in clusters]
    assert any(isinstance(a, BasicAuth) and a.password_env for a in auths)
    assert any(isinstance(a, BasicAuth) and a.password_file for a in auths)
    assert any(isinstance(a, CertAuth) for a in auths)
    assert any(isinstance(a, TokenAuth) for a in auths)
    key_ids = {svm.key_id for spec in clusters for svm in spec.svms} | {
        spec.key_id for spec in clusters
    }
    assert "current" in key_ids
    assert any(k.startswith("arn:aws:kms:") for k in key_ids)
    assert any(k.startswith("alias/") and "{" not in k for k in key_ids)
    assert any("{cluster}" in k and "{svm}" in k for k in key_ids)
    assert any(spec.all_svms for spec in clusters)
    assert any(spec.svms for spec in clusters)
    assert any(spec.include_cluster_scope for spec in clusters)
    assert result.inventory.retry
