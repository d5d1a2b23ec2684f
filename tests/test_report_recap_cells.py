"""The recap's cluster rows go in as pre-parsed rich `Text` where a cell has no markup or
emoji code: the printed recap is the one plain strings give, in colour and without, wide
and narrow, cluster names with markup-like text included."""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from orchestrator.core.targets import TargetKey
from orchestrator.observe import recap
from tests.synthetic_run import make_plan, make_rows, make_run

CONSOLES: list[dict[str, Any]] = [
    {"width": 120, "no_color": True},
    {"width": 120, "force_terminal": True, "color_system": "truecolor"},
    {"width": 60, "force_terminal": True, "color_system": "256"},  # too narrow: lines
]


def _printed(run: Any, rows: Any, console: dict[str, Any]) -> str:
    buffer = io.StringIO()
    recap.render_recap(run, rows, [], Console(file=buffer, **console), state="s.db")
    return buffer.getvalue()


def _plain_cells(table: Table, *cells: str) -> None:
    table.add_row(*cells)


@pytest.mark.parametrize("console", CONSOLES)
@pytest.mark.parametrize("plan", [False, True])
def test_recap_with_text_cells_is_the_recap_with_strings(
    monkeypatch: pytest.MonkeyPatch, console: dict[str, Any], plan: bool
) -> None:
    run, rows = make_plan() if plan else (make_run(), make_rows(make_run())[0])
    odd = {"east-01": "[bold]east-01", "west-02": "west:smile:02"}  # markup, an emoji code
    rows = [
        replace(r, key=TargetKey(odd.get(r.key.cluster, r.key.cluster), r.key.svm)) for r in rows
    ]
    fast = _printed(run, rows, console)
    monkeypatch.setattr(recap, "_add_row", _plain_cells)
    assert fast == _printed(run, rows, console)
