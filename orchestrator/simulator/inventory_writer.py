"""Write an inventory (spec: "Inventory", `version: 1`) for a simulated fleet.

The password never goes into the file: the inventory names the environment variable
`ONTAP_SIM_PASSWORD`, and `ontap-rekey simulate` prints the line that sets it. Hosts are
the simulator's URLs (`http://127.0.0.1:PORT`, or `https://` with `--tls`, when the CA
bundle goes into `defaults.tls.ca_bundle`, relative to the inventory when it sits beside
or below it, since relative paths resolve against the inventory's folder).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from orchestrator.simulator.fleet import DEFAULT_USERNAME, ClusterDef, FleetSpec

PASSWORD_ENV = "ONTAP_SIM_PASSWORD"
SvmListing = Literal["all", "explicit"]


def inventory_document(
    fleet_spec: FleetSpec,
    urls: Mapping[str, str],
    *,
    ca_bundle: str | None = None,
    svms: SvmListing = "all",
) -> dict[str, Any]:
    """The inventory as plain data: one entry per cluster, in fleet order."""
    username = fleet_spec.clusters[0].username if fleet_spec.clusters else DEFAULT_USERNAME
    tls: dict[str, Any] = {"verify": True}
    if ca_bundle is not None:
        tls["ca_bundle"] = ca_bundle
    return {
        "version": 1,
        "defaults": {"auth": _basic_auth(username), "tls": tls},
        "clusters": [_cluster_entry(c, urls[c.name], username, svms) for c in fleet_spec.clusters],
    }


def _basic_auth(username: str) -> dict[str, str]:
    return {"username": username, "password_env": PASSWORD_ENV}


def _cluster_entry(
    cluster: ClusterDef, url: str, default_username: str, svms: SvmListing
) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": cluster.name, "host": url}
    if cluster.username != default_username:
        entry["auth"] = _basic_auth(cluster.username)
    entry["svms"] = "all" if svms == "all" else list(cluster.svms)
    if cluster.include_cluster_scope:
        entry["include_cluster_scope"] = True
    return entry


def write_inventory(
    path: Path,
    fleet_spec: FleetSpec,
    urls: Mapping[str, str],
    *,
    ca_bundle: Path | None,
    svms: SvmListing = "all",
) -> Path:
    """Write the fleet's inventory to `path` (atomically) and return the path."""
    bundle = _relative_to_folder(ca_bundle, path.parent) if ca_bundle is not None else None
    document = inventory_document(fleet_spec, urls, ca_bundle=bundle, svms=svms)
    header = (
        "# Written by `ontap-rekey simulate`: the simulated fleet, as it listens now.\n"
        f"# The password comes from ${PASSWORD_ENV} (simulate prints the line that sets it).\n"
    )
    text = header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def _relative_to_folder(file: Path, folder: Path) -> str:
    """`file` relative to `folder` when it lies inside it, else absolute."""
    absolute = file.resolve()
    try:
        return absolute.relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(absolute)
