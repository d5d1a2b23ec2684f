"""The recap printed at the end of `run`/`plan` (and by `ontap-rekey report RUN_ID`).

One table row per cluster, a total row, then the most frequent errors with their hints.
rich handles the terminal: no colour without a terminal or with `NO_COLOR`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from orchestrator.core.outcomes import READY
from orchestrator.ledger.records import RunRecord, TargetRow, Transition
from orchestrator.observe.reports import summary

TOP_ERRORS = 5
OUTCOME_STYLES = {
    "rekeyed": "green",
    "ready": "green",
    "unverified": "yellow",
    "failed": "red",
    "not_ready": "red",
    "exhausted": "magenta",
    "skipped": "dim",
    "aborted": "dim",
    "pending": "dim",
}


def render_recap(
    run: RunRecord,
    targets: Sequence[TargetRow],
    transitions: Sequence[Transition],
    console: Console,
) -> None:
    """Print the per-cluster recap of `run` and its top errors to `console`."""
    if summary.is_plan(run):
        console.print(_plan_table(run, targets))
    else:
        console.print(_run_table(run, targets, transitions))
    _print_errors(targets, console)
    _print_status(run, targets, console)


def _run_table(
    run: RunRecord, targets: Sequence[TargetRow], transitions: Sequence[Transition]
) -> Table:
    names = summary.outcome_names(run)
    table = _table(f"Run {run.run_id}", names, ["retries", "duration"])
    retries = summary.retries_by_target(targets)
    for cluster, rows in summary.by_cluster(targets).items():
        counts = summary.count_outcomes(run, rows)
        table.add_row(
            cluster,
            *_counts(names, counts),
            str(sum(retries[str(row.key)] for row in rows)),
            _seconds(summary.span(rows)),
        )
    totals = summary.count_outcomes(run, targets)
    table.add_section()
    table.add_row(
        "total",
        *_counts(names, totals),
        str(sum(retries.values())),
        _seconds(summary.span(targets)),
        style="bold",
    )
    return table


def _plan_table(run: RunRecord, targets: Sequence[TargetRow]) -> Table:
    names = summary.outcome_names(run)
    table = _table(f"Plan {run.run_id}", names, ["reasons"])
    for cluster, rows in summary.by_cluster(targets).items():
        table.add_row(cluster, *_counts(names, summary.count_outcomes(run, rows)), _reasons(rows))
    table.add_section()
    totals = summary.count_outcomes(run, targets)
    table.add_row("total", *_counts(names, totals), _reasons(targets), style="bold")
    return table


def _table(title: str, names: Sequence[str], extra: Sequence[str]) -> Table:
    table = Table(title=title, title_justify="left")
    # Names and numbers never wrap (an 80-column pipe would split "east-01" otherwise);
    # only the free-text reasons column may.
    table.add_column("cluster", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right", style=OUTCOME_STYLES.get(name), no_wrap=True)
    for column in extra:
        reasons = column == "reasons"
        table.add_column(column, justify="left" if reasons else "right", no_wrap=not reasons)
    return table


def _counts(names: Sequence[str], counts: dict[str, int]) -> list[str]:
    return [str(counts.get(name, 0)) for name in names]


def _reasons(rows: Sequence[TargetRow]) -> str:
    counted = summary.reason_counts(row for row in rows if row.outcome != READY)
    return ", ".join(f"{reason} x{count}" for reason, count in counted.most_common()) or "-"


def _print_errors(targets: Sequence[TargetRow], console: Console) -> None:
    groups = summary.error_groups(targets)[:TOP_ERRORS]
    if not groups:
        return
    table = Table(title="Top errors", title_justify="left")
    for column in ("code", "class", "targets", "hint"):
        table.add_column(column, justify="right" if column == "targets" else "left")
    for group in groups:
        code = group.code or "-"
        table.add_row(code, group.error_class or "-", str(group.count), group.hint or "-")
    console.print(table)


def _print_status(run: RunRecord, targets: Sequence[TargetRow], console: Console) -> None:
    code = summary.exit_code(run, targets)
    exit_text = f", exit code {int(code)}" if code is not None else ""
    console.print(f"status: {run.status.value}{exit_text}", markup=False, highlight=False)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
