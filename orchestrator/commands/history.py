"""`ontap-rekey history`: when was each target last rotated, across every run.

Exit 0, or 5 with `--older-than` when a target is overdue or was never rotated, so cron or
a monitoring check can run it as is.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from orchestrator.commands.options import build_selection, selector_options
from orchestrator.config.loader import load_inventory
from orchestrator.core.durations import parse_duration
from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.inventory import Inventory
from orchestrator.errors import StateError, UserError
from orchestrator.ledger.history import history_json, history_lines, load_history
from orchestrator.ledger.store import Ledger

DEFAULT_STATE = "./ontap-rekey.db"


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """`90d`, `12h`, `1h30m` in seconds (a callback, not a ParamType: works on click 8.1)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command(name="history")
@click.argument("inventory", required=False, type=click.Path(path_type=Path, dir_okay=False))
@selector_options
@click.option(
    "--older-than",
    "older_than_s",
    callback=_duration,
    metavar="DURATION",
    help="Exit 5 if a target was last rotated longer ago than this (e.g. 90d), or never.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--state",
    "state",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_STATE,
    show_default=True,
    help="The ledger (SQLite file).",
)
def command(
    *,
    inventory: Path | None,
    cluster_globs: tuple[str, ...],
    svm_globs: tuple[str, ...],
    tags: tuple[str, ...],
    targets_file: str | None,
    older_than_s: float | None,
    as_json: bool,
    state: Path,
) -> int:
    """Per target, the last successful rotation (run, time, key id) across all runs.

    With INVENTORY it also lists the inventory's targets that were never rotated.
    """
    selection = build_selection(cluster_globs, svm_globs, tags, targets_file)
    if tags and inventory is None:
        raise UserError("--tag needs an INVENTORY: tags are defined there")
    fleet = _load_inventory(inventory) if inventory is not None else None
    with _open_ledger(state) as ledger:
        history = load_history(
            ledger, selection=selection, inventory=fleet, older_than_s=older_than_s, now=time.time()
        )
    if as_json:
        doc = history_json(history, ledger=str(state), inventory=_str(inventory))
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo("\n".join(history_lines(history)))
    return int(ExitCode.NOT_READY if history.needs_attention else ExitCode.OK)


def _load_inventory(path: Path) -> Inventory:
    # history reads names only: no credential file is opened and no password variable is
    # needed, so it runs from a cron job that holds no secrets.
    return load_inventory(path, check_files=False, check_env=False)


def _open_ledger(path: Path) -> Ledger:
    if not path.is_file():
        raise StateError(f"no ledger at {path}: pass --state, or run `ontap-rekey run` first")
    return Ledger.open(path)


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None
