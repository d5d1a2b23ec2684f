"""The recap's table written directly (`observe/plain_table.py`) is what rich prints,
character for character, wherever it is used: random tables of random widths, titles and
cells (markup, emoji codes, wide and accented characters, spaces at the ends among them:
those must go to rich), and the recap itself on consoles of every width."""

from __future__ import annotations

import io

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table
from rich.text import Text

from orchestrator.core.targets import TargetKey
from orchestrator.ledger.records import RunRecord, TargetRow
from orchestrator.observe import plain_table
from orchestrator.observe.recap import render_recap
from tests.synthetic_run import make_plan, make_rows, make_run

ANY = st.text(alphabet="abcxyz019 -._/[]:é界", max_size=14)
PLAIN = st.text(alphabet="abcxyz019-._/", max_size=14) | st.from_regex(
    r"[a-z0-9]+( [a-z0-9.]+)?", fullmatch=True
)


def _console(width: int, **options: object) -> Console:
    return Console(file=io.StringIO(), width=width, highlight=False, **options)  # type: ignore[arg-type]


def _printed(console: Console, renderable: object) -> str:
    console.print(renderable)
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


@st.composite
def tables(draw: st.DrawFn, plain: bool = False) -> Table:
    """Any table (`plain`: one the direct path takes, if it fits the console's width)."""
    texts = PLAIN if plain else ANY
    title = draw(texts.filter(bool) if plain else texts)
    justify = ["left", "right"] if plain else ["left", "right", "right", "center"]
    table = Table(title=title, title_justify="left" if plain else draw(st.sampled_from(justify)))
    for _ in range(draw(st.integers(1, 8))):
        table.add_column(
            draw(texts),
            justify=draw(st.sampled_from(justify)),
            no_wrap=plain or draw(st.booleans()) or draw(st.booleans()),
            min_width=draw(st.none() | st.integers(0, 12)),
        )
    for _ in range(draw(st.integers(1 if plain else 0, 12))):
        cells = [draw(texts) for _ in table.columns]
        as_text = draw(st.booleans())
        table.add_row(*(Text(c) if as_text else c for c in cells))
        if draw(st.integers(0, 4)) == 0:
            table.add_section()
    return table


@settings(max_examples=200, deadline=None)
@given(table=tables(), width=st.integers(10, 160))
def test_a_table_written_directly_is_what_rich_prints(table: Table, width: int) -> None:
    plain = plain_table.text(_console(width), table)
    if plain is not None:
        assert _printed(_console(width), plain) == _printed(_console(width), table)


@settings(max_examples=200, deadline=None)
@given(table=tables(plain=True), width=st.integers(30, 200))
def test_a_plain_table_that_fits_is_written_directly_as_rich_prints_it(
    table: Table, width: int
) -> None:
    """`assume` rejects the tables too wide for the console: hypothesis fails the test
    should most of them be rejected, so the direct path is exercised for real."""
    plain = plain_table.text(_console(width), table)
    assume(plain is not None)
    assert _printed(_console(width), plain) == _printed(_console(width), table)


def test_the_typical_recap_table_is_written_directly() -> None:
    """The point of it: a run's table (cluster names, counts, `aws 40`, `113.7 s`)."""
    table = Table(title="Run 20261201-115852-2fc3", title_justify="left")
    table.add_column("cluster", no_wrap=True, min_width=7)
    for name in ("providers", "rekeyed", "failed", "retries", "duration"):
        table.add_column(name, justify="left" if name == "providers" else "right", no_wrap=True)
    table.add_row(*map(Text, ["c001", "aws 40, azure 2", "40", "2", "0", "113.7 s"]))
    table.add_section()
    table.add_row("total", "aws 40, azure 2", "40", "2", "0", "113.7 s", style="bold")
    console = _console(120)
    plain = plain_table.text(console, table)
    assert plain is not None
    assert _printed(console, plain) == _printed(_console(120), table)
    assert plain_table.text(_console(120, force_terminal=True), table) is None  # colour: rich


def _big_run() -> tuple[RunRecord, list[TargetRow]]:
    run = make_run()
    rows, _ = make_rows(run)
    many = [
        TargetRow(run.run_id, TargetKey(f"{row.key.cluster}-{n:03d}", row.key.svm))
        for n in range(40)
        for row in rows
    ]
    return run, rows + many


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 200])
@pytest.mark.parametrize("kind", ["run", "many", "plan"])
def test_the_recap_is_the_same_written_directly_or_by_rich(
    monkeypatch: pytest.MonkeyPatch, width: int, kind: str
) -> None:
    if kind == "plan":
        run, rows = make_plan()
    elif kind == "many":
        run, rows = _big_run()
    else:
        run = make_run()
        rows, _ = make_rows(run)
    direct = _console(width)
    render_recap(run, rows, [], direct, state="state.db", report_dir="out")
    monkeypatch.setattr(plain_table, "text", lambda console, table: None)
    by_rich = _console(width)
    render_recap(run, rows, [], by_rich, state="state.db", report_dir="out")
    assert direct.file.getvalue() == by_rich.file.getvalue()  # type: ignore[attr-defined]
