"""`ontap-rekey history`: when was each target last rotated, across every run.

Exit 0, or 5 with `--older-than` when a target is overdue or was never rotated, so cron or
a monitoring check can run it as is. `--format prometheus --output FILE` writes
node_exporter textfile metrics (atomically) for the same check from Prometheus. The ledger
is opened read-only: history never creates, migrates or writes a file at `--state`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from orchestrator.commands.options import check_selection, selection_from, selector_options
from orchestrator.config.loader import load_inventory
from orchestrator.core.durations import parse_duration
from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.inventory import Inventory
from orchestrator.core.providers import Operation
from orchestrator.core.selectors import Selection, describe
from orchestrator.errors import UserError
from orchestrator.ledger import DEFAULT_STATE
from orchestrator.ledger.history import (
    History,
    history_json,
    history_lines,
    load_history,
    open_ledger_readonly,
)
from orchestrator.ledger.metrics import prometheus_text, write_atomically

FORMATS = ("table", "json", "prometheus")


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
@click.option(
    "--rekey",
    "operation",
    type=click.Choice([op.value for op in Operation]),
    default=Operation.EXTERNAL.value,
    show_default=True,
    help="The rotation STATUS and --older-than judge; the other one's last rotation is "
    "shown beside it.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default=None,
    help="table (default), json (schema ontap-rekey/history/v1) or prometheus "
    "(node_exporter textfile metrics).",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to FILE (temp file + rename, so a reader never sees half of it) "
    "instead of stdout; e.g. node_exporter's textfile folder.",
)
@click.option(
    "--state",
    "state",
    type=click.Path(path_type=Path, dir_okay=False),
    default=DEFAULT_STATE,
    show_default=True,
    help="The ledger (SQLite file), opened read-only.",
)
def command(
    *,
    inventory: Path | None,
    older_than_s: float | None,
    output_format: str | None,
    as_json: bool,
    output: Path | None,
    state: Path,
    operation: str,
    **selectors: object,
) -> int:
    """Per target, the last successful rotation (run, time, key id) across all runs.

    With INVENTORY it lists every target the inventory names, also those never rotated
    (a `svms: all` cluster no run has discovered yet shows as `cluster/*`).
    """
    fmt = _format(output_format, as_json)
    selection = selection_from(selectors)
    if selection.tags and inventory is None:
        raise UserError("--tag needs an INVENTORY: tags are defined there")
    fleet = _load_inventory(inventory, selection) if inventory is not None else None
    with open_ledger_readonly(state) as ledger:
        history = load_history(
            ledger,
            selection=selection,
            inventory=fleet,
            older_than_s=older_than_s,
            now=time.time(),
            operation=Operation(operation),
        )
    _require_matches(history, selection)
    _emit(_render(history, fmt, str(state), inventory), output)
    return int(ExitCode.NOT_READY if history.needs_attention else ExitCode.OK)


def _format(output_format: str | None, as_json: bool) -> str:
    if as_json and output_format not in (None, "json"):
        raise UserError(f"--json and --format {output_format} contradict each other (keep one)")
    return "json" if as_json else output_format or "table"


def _load_inventory(path: Path, selection: Selection) -> Inventory:
    # history reads names only: no credential file is opened and no password variable is
    # needed, so it runs from a cron job that holds no secrets.
    fleet = load_inventory(path, check_files=False, check_env=False)
    check_selection(selection, fleet)
    return fleet


def _require_matches(history: History, selection: Selection) -> None:
    """Selectors that match no target (of the ledger, or of `svms: all` clusters whose
    SVMs the ledger knows) are a usage error, not an empty (green) answer."""
    no_selector = selection.is_empty and not (
        selection.exclude_clusters or selection.exclude_svms or selection.excluded_targets
    )
    if not history.entries and not no_selector:
        raise UserError(f"the selection matches no target in the ledger: {describe(selection)}")


def _render(history: History, fmt: str, state: str, inventory: Path | None) -> str:
    if fmt == "json":
        doc = history_json(history, ledger=state, inventory=_str(inventory))
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "prometheus":
        return prometheus_text(history)
    return "\n".join(history_lines(history)) + "\n"


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        write_atomically(output, text)
    except OSError as exc:
        raise UserError(f"--output {output}: cannot write: {exc.strerror or exc}") from None


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None
