"""Cluster identity, the pure part: which uuid pins an entry and what a mismatch says."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.config import load
from orchestrator.core.identity import expected_uuid, identity_problem, with_recorded_uuids
from orchestrator.core.inventory import BasicAuth, ClusterSpec, Inventory, TlsSettings
from orchestrator.errors import InventoryError

PINNED = "1cd8a442-86d1-11e0-ae1c-123478563412"
RECORDED = "2cd8a442-86d1-11e0-ae1c-123478563412"
OTHER = "3cd8a442-86d1-11e0-ae1c-123478563412"

SPEC = ClusterSpec(
    name="east-01",
    base_url="https://east-01.example.com",
    auth=BasicAuth("admin", password_env="P"),
    tls=TlsSettings(),
    key_id="current",
)


def test_an_entry_nothing_pins_accepts_any_cluster() -> None:
    assert expected_uuid(SPEC) is None
    assert identity_problem(SPEC, OTHER) is None


def test_the_inventory_pin_wins_over_the_ledger_memory() -> None:
    """Pinning the new uuid is how an administrator accepts a replaced cluster."""
    spec = replace(SPEC, uuid=PINNED, recorded_uuid=RECORDED)
    assert expected_uuid(spec) == (PINNED, "inventory")
    assert identity_problem(spec, PINNED) is None
    assert identity_problem(spec, PINNED.upper()) is None
    problem = identity_problem(spec, RECORDED)
    assert problem is not None
    assert f"reports uuid {RECORDED}, but the inventory pins {PINNED} (uuid:)" in problem


def test_the_ledger_memory_pins_an_entry_without_uuid() -> None:
    spec = replace(SPEC, recorded_uuid=RECORDED)
    assert expected_uuid(spec) == (RECORDED, "ledger")
    problem = identity_problem(spec, OTHER)
    assert problem is not None
    assert f"earlier runs recorded {RECORDED} for east-01" in problem
    assert f"set uuid: {OTHER} on east-01" in problem


def test_recorded_uuids_are_attached_by_entry_name() -> None:
    inventory = Inventory(Path("f.yaml"), "0" * 64, 1, (SPEC, replace(SPEC, name="west")))
    pinned = with_recorded_uuids(inventory, {"west": RECORDED, "gone": OTHER})
    assert [spec.recorded_uuid for spec in pinned.clusters] == [None, RECORDED]


INVENTORY = """\
version: 1
defaults:
  auth: {{username: admin, password_env: P}}
clusters:
  - name: east-01
    host: east-01.example.com
    uuid: {uuid}
    svms: all
"""


def test_the_inventory_uuid_is_read_lower_case(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(INVENTORY.format(uuid=PINNED.upper()))
    (spec,) = load(path, environ={"P": "x"}).inventory.clusters
    assert spec.uuid == PINNED


@pytest.mark.parametrize("uuid", ["east-01", "1cd8a442-86d1-11e0-ae1c", "12345"])
def test_an_invalid_uuid_is_an_error_at_its_line(tmp_path: Path, uuid: str) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(INVENTORY.format(uuid=uuid))
    with pytest.raises(InventoryError) as caught:
        load(path, environ={"P": "x"})
    (line,) = caught.value.lines
    assert line.startswith(f"{path}:7:11: clusters[0].uuid: ")
