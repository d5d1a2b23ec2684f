"""The recap table printed at the end of a run or plan, and by `report RUN_ID`."""

from __future__ import annotations

import io
import re

from rich.console import Console
from synthetic_run import make_plan, make_rows, make_run

from orchestrator.observe.recap import render_recap

RUN = make_run()
ROWS, TRANSITIONS = make_rows(RUN)


def recap_text(**console: object) -> str:
    out = io.StringIO()
    render_recap(RUN, ROWS, TRANSITIONS, Console(file=out, width=160, **console))  # type: ignore[arg-type]
    return out.getvalue()


def row_of(text: str, name: str) -> list[str]:
    """The cells of the table row that starts with `name`."""
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in\n{text}")


def test_recap_has_a_row_per_cluster_with_counts_retries_and_duration() -> None:
    """rekeyed, unverified, failed, exhausted, skipped, aborted, retries, duration per cluster."""
    text = recap_text()
    header = row_of(text, "cluster")
    assert header == [
        "cluster",
        "rekeyed",
        "unverified",
        "failed",
        "exhausted",
        "skipped",
        "aborted",
        "retries",
        "duration",
    ]
    assert row_of(text, "east-01") == ["east-01", "3", "1", "1", "0", "0", "0", "2", "15.8 s"]
    # retries are attempts after the first: svm_hr was exhausted after 3 attempts, 2 retries
    assert row_of(text, "west-02") == ["west-02", "1", "0", "0", "1", "1", "1", "2", "25.0 s"]
    assert row_of(text, "south-03")[1:7] == ["0", "0", "0", "0", "2", "0"]
    assert row_of(text, "total")[1:8] == ["4", "1", "1", "1", "3", "1", "4"]


def test_recap_lists_top_errors_with_hints_and_the_status() -> None:
    """After the table: the most frequent error codes with their hints, then the exit code."""
    text = recap_text()
    assert "Not rekeyed, by reason (7 targets)" in text
    assert "65537547" in text
    assert "Check the key id and the IAM policy" in text
    assert "status: aborted, exit code 4" in text


def test_plan_recap_shows_ready_not_ready_and_reasons() -> None:
    """For a plan: per cluster ready / not_ready and the reasons."""
    run, rows = make_plan()
    out = io.StringIO()
    render_recap(run, rows, [], Console(file=out, width=160))
    text = out.getvalue()
    assert row_of(text, "cluster") == ["cluster", "ready", "not_ready", "reasons"]
    assert row_of(text, "east-01") == ["east-01", "2", "0", "-"]
    assert row_of(text, "west-02") == ["west-02", "0", "1", "key_store_switching x1"]
    assert "status: finished, exit code 5" in text


def test_recap_off_a_terminal_has_no_ansi_escapes() -> None:
    """A pipe or a file gets the table without escape sequences."""
    assert "\x1b[" not in recap_text()
    # NO_COLOR removes colour (bold stays, as no-color.org allows)
    colour = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|4[0-9])m")
    assert not colour.search(recap_text(force_terminal=True, no_color=True))
    assert colour.search(recap_text(force_terminal=True))
