"""`ontap-rekey report RUN_ID`: render a past run from the ledger.

Without `--format` it prints the recap table; with one, the same text the run wrote into
its report directory (every report is built only from the ledger's rows).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import click
from rich.console import Console

from orchestrator.errors import UserError
from orchestrator.ledger import DEFAULT_STATE, report_rows
from orchestrator.ledger.records import RunRecord, TargetRow, Transition
from orchestrator.ledger.store import Ledger
from orchestrator.observe.recap import render_recap
from orchestrator.observe.reports import ReportFormat, collector, render

FORMATS = ("json", "md", "html", "junit")
RECAP_WIDTH = 120


@click.command(name="report")
@click.argument("run_id")
@click.option(
    "--state",
    "state",
    type=click.Path(path_type=Path),
    default=DEFAULT_STATE,
    show_default=True,
    help="The ledger (SQLite) file.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Print this report format instead of the recap table.",
)
@click.option(
    "--output",
    "output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write to this file instead of stdout.",
)
def command(run_id: str, state: Path, fmt: str | None, output: Path | None) -> int:
    """Render the report of a past run RUN_ID from the ledger."""
    run, targets, transitions = _load(state, run_id)
    if fmt is None:
        _print_recap(run, targets, transitions, output, state)
    else:
        _emit(render(cast(ReportFormat, fmt), run, targets, transitions, state=state), output)
    return 0


def _load(state: Path, run_id: str) -> tuple[RunRecord, list[TargetRow], list[Transition]]:
    # Reading a report never creates a ledger; it may migrate an older one (the report
    # reads every column of the current schema).
    with Ledger.open(state, create=False) as ledger, collector.paused():
        run = ledger.get_run(run_id)
        targets = report_rows.targets(ledger, run_id)
        return run, targets, report_rows.transitions(ledger, run_id, targets)


def _print_recap(
    run: RunRecord,
    targets: list[TargetRow],
    transitions: list[Transition],
    output: Path | None,
    state: Path,
) -> None:
    if output is None:
        console = Console()
        if not console.is_terminal:  # a pipe has no width: do not squeeze the table to 80
            console = Console(width=RECAP_WIDTH)
        render_recap(run, targets, transitions, console, state=str(state))
        return
    buffer = io.StringIO()  # a file gets plain text: no colour, a fixed width
    plain = Console(file=buffer, width=RECAP_WIDTH, no_color=True)
    render_recap(run, targets, transitions, plain, state=str(state))
    _emit(buffer.getvalue(), output)


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--output: cannot write {output}: {exc.strerror}") from None
    click.echo(f"wrote {output}", err=True)
