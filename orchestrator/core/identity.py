"""Cluster identity: is the cluster that answers at an inventory entry's address the one
the inventory (`uuid:`) or the ledger (the uuid it reported in earlier runs) knows?

A uuid that differs means another cluster answers there (a DNS entry or an address reused,
a copy-pasted host): none of its targets is rekeyed (`skipped: identity_mismatch`). A name
that differs is only worth a warning, since inventory names are often DNS names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from orchestrator.core.inventory import ClusterSpec, Inventory


def with_recorded_uuids(inventory: Inventory, recorded: Mapping[str, str]) -> Inventory:
    """The inventory with each cluster's `recorded_uuid` from the ledger's memory."""
    clusters = tuple(
        replace(spec, recorded_uuid=recorded.get(spec.name)) for spec in inventory.clusters
    )
    return replace(inventory, clusters=clusters)


def expected_uuid(spec: ClusterSpec) -> tuple[str, str] | None:
    """The uuid the cluster must report and where that comes from, if anything pins it.

    The inventory's `uuid:` wins over the ledger's memory: pinning the new uuid there is
    how an administrator accepts a cluster replaced on purpose.
    """
    if spec.uuid is not None:
        return spec.uuid, "inventory"
    if spec.recorded_uuid is not None:
        return spec.recorded_uuid, "ledger"
    return None


def identity_problem(spec: ClusterSpec, reported_uuid: str) -> str | None:
    """Why the cluster that answered is not the one expected, or None."""
    expected = expected_uuid(spec)
    if expected is None or expected[0] == reported_uuid.lower():
        return None
    uuid, source = expected
    if source == "inventory":
        return (
            f"the cluster at {spec.base_url} reports uuid {reported_uuid}, but the inventory "
            f"pins {uuid} (uuid:): another cluster answers there; nothing was rekeyed"
        )
    return (
        f"the cluster at {spec.base_url} reports uuid {reported_uuid}, but earlier runs "
        f"recorded {uuid} for {spec.name}: another cluster answers there; nothing was "
        f"rekeyed (if it was replaced on purpose, set uuid: {reported_uuid} on {spec.name})"
    )
