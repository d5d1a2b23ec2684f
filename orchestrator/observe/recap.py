"""The recap printed at the end of `run`/`plan` (and by `ontap-rekey report RUN_ID`).

One table row per cluster and a total row (one line per cluster on a terminal too narrow
for the table, so cluster names are never cut to `c0…`), then every target not rekeyed
grouped by reason with its names and the hint for that reason, then the status: why the
run stopped, its exit code, and the exact commands that continue it.
rich handles the terminal: no colour without a terminal or with `NO_COLOR`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from orchestrator.core.outcomes import NOT_READY, READY
from orchestrator.ledger.records import RunRecord, TargetRow, Transition
from orchestrator.observe import plain_table
from orchestrator.observe.reports import collector, nextsteps, summary
from orchestrator.observe.text import plural

TOP_GROUPS = 8  # reason groups shown; report.md/html list them all
SHOWN_NAMES = 6  # target names per group, then "and N more"
HINT_MIN_WIDTH = 40  # narrower, a hint wraps a word a line: print lines instead
TARGETS_MIN_WIDTH = 20
UNBOUNDED = 10_000  # columns: to measure a table's natural width
OUTCOME_STYLES = {
    "rekeyed": "green",
    READY: "green",
    "unverified": "yellow",
    "failed": "red",
    NOT_READY: "red",
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
    *,
    state: str | None = None,
    report_dir: str | None = None,
) -> None:
    """Print the recap of `run` to `console`: per cluster, not rekeyed by reason, what next.

    `state` (the ledger as the operator named it) and `report_dir` make the suggested
    commands exact; without them the commands name `failed.txt` of the report folder.
    """
    del transitions  # everything shown is counted from the rows (retries: attempts)
    with collector.paused():  # rich's tables: tens of thousands of objects, no cycle
        table = _plan_table(run, targets) if summary.is_plan(run) else _run_table(run, targets)
        _print_fitting(console, table, _cluster_lines(run, targets), str(table.title))
        _print_groups(run, targets, console)
        _print_status(run, targets, console, state, report_dir)


def _print_fitting(console: Console, table: Table | None, lines: list[str], title: str) -> None:
    """The table when it fits the console (None: it does not), else plain lines."""
    plain = plain_table.text(console, table) if table is not None else None
    if plain is not None:  # the same text, built directly (no colour: nothing is styled)
        console.print(plain)
        return
    if table is not None and _fits(console, table):
        console.print(table)
        return
    console.print(title, markup=False, highlight=False)
    for line in lines:
        console.print(line, markup=False, highlight=False, soft_wrap=False)


def _fits(console: Console, table: Table) -> bool:
    """Whether `table` fits with no cell cut (only the columns that may wrap wrap)."""
    unbounded = console.options.update_width(UNBOUNDED)
    return Measurement.get(console, unbounded, table).minimum <= console.width


def _cluster_lines(run: RunRecord, targets: Sequence[TargetRow]) -> list[str]:
    """`east-01: 12 targets, rekeyed 11, failed 1; retries 2; 15.8 s` per cluster, and total."""
    groups = [*summary.by_cluster(targets).items(), ("total", list(targets))]
    return [f"{name}: {_line_counts(run, rows)}" for name, rows in groups]


def _line_counts(run: RunRecord, rows: Sequence[TargetRow]) -> str:
    counts = summary.count_outcomes(run, rows)
    parts = [f"{name} {count}" for name, count in counts.items() if count]
    text = f"{plural(len(rows), 'target')}: " + (", ".join(parts) or "none")
    if summary.is_plan(run):
        return text
    retries = sum(map(summary.retries, rows))
    return f"{text}; retries {retries}; {_seconds(summary.span(rows))}"


def _run_table(run: RunRecord, targets: Sequence[TargetRow]) -> Table:
    names = summary.outcome_names(run)
    table = _table(f"Run {run.run_id}", names, ["retries", "duration"], targets)
    for cluster, rows in summary.by_cluster(targets).items():
        counts = summary.count_outcomes(run, rows)
        _add_row(
            table,
            cluster,
            _providers(rows),
            *_counts(names, counts),
            str(sum(map(summary.retries, rows))),
            _seconds(summary.span(rows)),
        )
    totals = summary.count_outcomes(run, targets)
    table.add_section()
    table.add_row(
        "total",
        _providers(targets),
        *_counts(names, totals),
        str(sum(map(summary.retries, targets))),
        _seconds(summary.span(targets)),
        style="bold",
    )
    return table


def _plan_table(run: RunRecord, targets: Sequence[TargetRow]) -> Table:
    names = summary.outcome_names(run)
    table = _table(f"Plan {run.run_id}", names, ["reasons"], targets)
    for cluster, rows in summary.by_cluster(targets).items():
        counts = _counts(names, summary.count_outcomes(run, rows))
        _add_row(table, cluster, _providers(rows), *counts, _reasons(rows))
    table.add_section()
    totals = summary.count_outcomes(run, targets)
    table.add_row(
        "total", _providers(targets), *_counts(names, totals), _reasons(targets), style="bold"
    )
    return table


def _table(
    title: str, names: Sequence[str], extra: Sequence[str], targets: Sequence[TargetRow]
) -> Table:
    table = Table(title=title, title_justify="left")
    # Names and numbers never wrap (an 80-column pipe would split "east-01" otherwise);
    # only the free-text reasons column may. A table too wide for the console is printed
    # as lines instead (`_print_fitting`): a name must never shrink to `c0…`.
    longest = max((len(row.key.cluster) for row in targets), default=0)
    table.add_column("cluster", no_wrap=True, min_width=max(len("total"), longest))
    table.add_column("providers", no_wrap=True)  # issue 15: `aws 2, azure 2, gcp 2`
    for name in names:
        table.add_column(name, justify="right", style=OUTCOME_STYLES.get(name), no_wrap=True)
    for column in extra:
        reasons = column == "reasons"
        table.add_column(column, justify="left" if reasons else "right", no_wrap=not reasons)
    return table


def _add_row(table: Table, *cells: str) -> None:
    """A cluster's row. A cell with no markup (`[`) and no emoji code (`:`) goes in as the
    `Text` rich would parse it into, parsed once instead of three times (the table is
    measured twice and rendered once: ~10,000 parses at 250 clusters)."""
    table.add_row(*(Text(cell) if "[" not in cell and ":" not in cell else cell for cell in cells))


def _counts(names: Sequence[str], counts: dict[str, int]) -> list[str]:
    return [str(counts.get(name, 0)) for name in names]


def _providers(rows: Sequence[TargetRow]) -> str:
    """`aws 2, azure 2, gcp 2`: the key managers of these targets (issue 15)."""
    counted = summary.provider_counts(rows)
    return ", ".join(f"{name} {count}" for name, count in counted.items()) or "-"


def _reasons(rows: Sequence[TargetRow]) -> str:
    counted = summary.reason_counts(row for row in rows if row.outcome != READY)
    return ", ".join(f"{reason} x{count}" for reason, count in counted.most_common()) or "-"


def _print_groups(run: RunRecord, targets: Sequence[TargetRow], console: Console) -> None:
    groups = summary.reason_groups(targets)
    if not groups:
        return
    what = "Not ready" if summary.is_plan(run) else "Not rekeyed"
    count = sum(len(g.targets) for g in groups)
    table = Table(title=f"{what}, by reason ({plural(count, 'target')})", title_justify="left")
    table.add_column("outcome", no_wrap=True)
    table.add_column("code", no_wrap=True)
    # no min_width: rich then crops instead of wrapping; `needed` below decides instead
    table.add_column("targets", overflow="fold")
    table.add_column("hint", overflow="fold")
    lines = []
    for group in groups[:TOP_GROUPS]:
        names = summary.names(group.targets, SHOWN_NAMES)
        table.add_row(group.label, group.code or "-", names, group.hint or "-")
        shown_code = f" {group.code}" if group.code else ""
        lines.append(f"- {group.label}{shown_code} ({len(group.targets)}): {names}")
        lines.append(f"  hint: {group.hint or '-'}")
    label = max(len(g.label) for g in groups)
    code_w = max(len(g.code or "-") for g in groups)
    needed = label + code_w + TARGETS_MIN_WIDTH + HINT_MIN_WIDTH + 4 * 3 + 1  # cells, borders
    _print_fitting(console, table if needed <= console.width else None, lines, str(table.title))
    if len(groups) > TOP_GROUPS:
        more = f"... and {len(groups) - TOP_GROUPS} more reasons: see report.md"
        console.print(more, markup=False, highlight=False)


def _print_status(
    run: RunRecord,
    targets: Sequence[TargetRow],
    console: Console,
    state: str | None,
    report_dir: str | None,
) -> None:
    code = summary.exit_code(run, targets)
    exit_text = f", exit code {int(code)}" if code is not None else ""
    failed_txt = f"{report_dir.rstrip('/')}/failed.txt" if report_dir else "failed.txt"
    steps = nextsteps.next_steps(run, targets, state=state, failed_txt=failed_txt)
    stopped = f": {steps.stopped}" if steps.stopped else ""
    console.print(f"status: {run.status.value}{exit_text}{stopped}", markup=False, highlight=False)
    for step in steps.steps:
        console.print(f"next: {step.command}", markup=False, highlight=False, soft_wrap=True)
        console.print(f"      ({step.why})", markup=False, highlight=False)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
