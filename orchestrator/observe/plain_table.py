"""The recap's per-cluster table as rich prints it where nothing is styled, written directly.

On a console without colours (a pipe, a file, `TERM=dumb`: every scheduled run) rich
prints the table as plain text: box characters, each cell padded to its column's
natural width. Measuring and rendering it through rich cost ~0.4 s of CPU at 250
clusters (2,500 cells measured twice and rendered once, ~10 s at 2,500): here the same
text is built in one pass. Only for the tables whose text is certain (`text` returns None
otherwise and rich prints the table): plain one-line ASCII cells, the default layout, no
wrapping, and a natural width that fits the console (then rich neither collapses nor
crops a column). `tests/test_recap_plain_table.py` holds it to rich's own output.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Column, Table
from rich.text import Text

_PADDING = (0, 1, 0, 1)
_JUSTIFY = {"left": str.ljust, "right": str.rjust}


class PlainLines:
    """Lines printed as they are (rich crops nothing: they fit the console)."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        line = Segment.line()
        for text in self.lines:
            yield Segment(text)
            yield line


def text(console: Console, table: Table) -> PlainLines | None:
    """`table` as `console.print(table)` prints it, or None where that is not certain."""
    if console.color_system is not None or console.is_jupyter or not _plain_layout(table):
        return None
    cells = [_cells(column) for column in table.columns]
    if any(column is None for column in cells):
        return None
    columns: list[list[str]] = [c for c in cells if c is not None]
    widths = [_width(column, texts) for column, texts in zip(table.columns, columns, strict=True)]
    title = str(table.title)
    table_width = sum(widths) + len(widths) + 1  # the edges and the dividers
    if (
        table_width > console.width
        or not title
        or not _plain_text(title)
        or len(title) > table_width
    ):
        return None
    safe = console.safe_box if table.safe_box is None else table.safe_box
    box = table.box.substitute(console.options, safe=safe)  # type: ignore[union-attr]
    lines = [title.ljust(table_width), box.get_top(widths)]
    justify = [_JUSTIFY[str(column.justify)] for column in table.columns]
    rows = list(zip(*columns, strict=True))
    sections = [row.end_section for row in table.rows]
    for index, row in enumerate(rows):
        if index == 0:
            left, divider, right = box.head_left, box.head_vertical, box.head_right
        elif index == len(rows) - 1:
            left, divider, right = box.foot_left, box.foot_vertical, box.foot_right
        else:
            left, divider, right = box.mid_left, box.mid_vertical, box.mid_right
        padded = (
            f" {fit(cell, width - 2)} "
            for fit, cell, width in zip(justify, row, widths, strict=True)
        )
        lines.append(left + divider.join(padded) + right)
        if index == 0:
            lines.append(box.get_row(widths, "head"))
        elif index < len(rows) - 1 and sections[index - 1]:
            lines.append(box.get_row(widths, "row"))
    lines.append(box.get_bottom(widths))
    return PlainLines(lines)


def _plain_layout(table: Table) -> bool:
    """rich's default table layout, a left-justified one-line title, no caption or footer."""
    return (
        table.box is not None
        and table.show_header
        and table.show_edge
        and not (table.show_footer or table.show_lines or table.leading or table.expand)
        and table.width is None
        and table.min_width is None
        and table.caption is None
        and isinstance(table.title, str)
        and table.title_justify == "left"
        and table.padding == _PADDING
        and table.pad_edge
        and not table.collapse_padding
        and len(table.rows) > 0
        and all(_plain_column(column) for column in table.columns)
    )


def _plain_column(column: Column) -> bool:
    return (
        column.no_wrap
        and column.justify in _JUSTIFY
        and column.width is None
        and column.max_width is None
        and column.ratio is None
        and isinstance(column.header, str)
    )


def _cells(column: Column) -> list[str] | None:
    """The header and every cell's text; None if one is not plain (`Text` without spans
    or justification of its own, or a string rich would parse)."""
    texts = [str(column.header)]
    for cell in column.cells:
        if isinstance(cell, str):  # parsed as markup: the same text when nothing is to parse
            texts.append(cell)
        elif isinstance(cell, Text) and _unstyled(cell):
            texts.append(cell.plain)
        else:
            return None
    return texts if all(map(_plain_text, texts)) else None


def _unstyled(cell: Text) -> bool:
    return not (cell.spans or cell.justify or cell.overflow or cell.no_wrap or cell.end != "\n")


def _plain_text(value: str) -> bool:
    """Printable ASCII (one column per character), nothing rich would parse ([markup],
    :emoji:), no space at either end (nothing rich could strip or wrap)."""
    return (
        value.isascii()
        and value.isprintable()
        and "[" not in value
        and ":" not in value
        and value == value.strip()
    )


def _width(column: Column, texts: Sequence[str]) -> int:
    """The column's width with its padding: its longest text, at least `min_width`."""
    natural = max(map(len, texts))
    if column.min_width is not None:
        natural = max(natural, column.min_width)
    return natural + 2
