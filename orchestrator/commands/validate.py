"""`ontap-rekey validate INVENTORY [SELECTORS] [--json]`: check an inventory, offline.

Nothing is contacted. Errors come back as an InventoryError (exit 2, one line each);
warnings go to stderr; the summary (or, with `--json`, the resolved inventory) to stdout.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from orchestrator.commands.options import check_selection, selection_from, selector_options
from orchestrator.config import LoadResult, load
from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.inventory import Auth, BasicAuth, CertAuth, ClusterSpec, Inventory
from orchestrator.core.selectors import Selection, clusters_to_discover, known_targets

_SHA_SHOWN = 12


@click.command(name="validate")
@click.argument("inventory", type=click.Path(path_type=Path, dir_okay=False))
@selector_options
@click.option("--json", "as_json", is_flag=True, help="Print the resolved inventory as JSON.")
@click.option(
    "--no-env-check",
    is_flag=True,
    help="Report unset password_env/token_env variables as warnings, not errors "
    "(to lint an inventory where the secrets are not available).",
)
def command(*, inventory: Path, as_json: bool, no_env_check: bool, **selectors: object) -> int:
    """Check INVENTORY offline: schema, references, environment variables, files.

    Prints a summary and the targets the selectors select; exits 2 with one line per
    problem (file:line:column: path: what is wrong) when the inventory is broken, and
    with one line per selector that matches nothing.
    """
    selection = selection_from(selectors)
    result = load(inventory, check_env=not no_env_check)
    check_selection(selection, result.inventory)
    for warning in result.warnings:
        click.echo(warning, err=True)
    if as_json:
        click.echo(json.dumps(inventory_json(result, selection), indent=2))
    else:
        click.echo("\n".join(summary_lines(result, selection)))
    return int(ExitCode.OK)


def summary_lines(result: LoadResult, selection: Selection) -> list[str]:
    """The human summary: counts, groups, tags and what the selectors select."""
    inv = result.inventory
    all_svms = sum(spec.all_svms for spec in inv.clusters)
    scopes = sum(spec.include_cluster_scope for spec in inv.clusters)
    tags = sorted({tag for spec in inv.clusters for tag in spec.tags})
    return [
        f"{inv.path.name}: valid (version {inv.version}, sha256 {inv.sha256[:_SHA_SHOWN]})",
        f"  clusters:        {len(inv.clusters)} ({all_svms} with svms: all)",
        f"  explicit SVMs:   {sum(len(spec.svms) for spec in inv.clusters)}",
        f"  cluster scopes:  {scopes}",
        f"  groups:          {_counted(sorted(result.groups))}",
        f"  tags:            {_counted(tags)}",
        f"  selected:        {_selected(inv, selection)}",
    ]


def _counted(names: list[str]) -> str:
    return f"{len(names)} ({', '.join(names)})" if names else "0"


def _selected(inventory: Inventory, selection: Selection) -> str:
    known = len(known_targets(selection, inventory))
    pending = len(clusters_to_discover(selection, inventory))
    text = f"{known} target{'s' if known != 1 else ''}"
    if pending:
        clusters = f"{pending} cluster{'s' if pending != 1 else ''}"
        text += f", plus {clusters} with svms: all, selected after discovery"
    return text


def inventory_json(result: LoadResult, selection: Selection) -> dict[str, Any]:
    """The resolved inventory as JSON-ready data: file paths and variable names, no secret."""
    inv = result.inventory
    data: dict[str, Any] = _jsonable(
        {
            "path": inv.path,
            "sha256": inv.sha256,
            "version": inv.version,
            "defaults": asdict(inv.defaults),
            "retry": {code: asdict(override) for code, override in inv.retry.items()},
            "groups": list(result.groups),
            "clusters": [_cluster_json(spec) for spec in inv.clusters],
            "selected": {
                "targets": [str(key) for key in known_targets(selection, inv)],
                "clusters_to_discover": [s.name for s in clusters_to_discover(selection, inv)],
            },
            "warnings": list(result.warnings),
        }
    )
    return data


def _cluster_json(spec: ClusterSpec) -> dict[str, Any]:
    data = asdict(spec)
    data["auth"] = {"method": _auth_method(spec.auth), **asdict(spec.auth)}
    return data


def _auth_method(auth: Auth) -> str:
    if isinstance(auth, BasicAuth):
        return "basic"
    return "cert" if isinstance(auth, CertAuth) else "token"


def _jsonable(value: Any) -> Any:
    """Paths as strings, tuples as lists, recursively (enums are already strings)."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value) if isinstance(value, Path) else value
