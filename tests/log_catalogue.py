"""docs/logging.md's event catalogue, parsed: event -> documented levels and fields.

Shared by the tests that keep the catalogue true (not a test module itself).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs" / "logging.md"
BOUND = frozenset({"run_id", "reason", "cluster", "svm", "wave"})
"""Context fields bound by the engine: allowed on every line, documented once."""
ENVELOPE = frozenset({"timestamp", "level", "event"})

_ROW = re.compile(r"^\| `(?P<event>[a-z_]+\.[a-z_]+)` \[(?P<levels>[a-z/]+)\] \|(?P<rest>.*)\|$")
_PARENS = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class Entry:
    levels: frozenset[str]
    fields: frozenset[str]


def catalogue(text: str | None = None) -> dict[str, Entry]:
    """Every catalogue row of docs/logging.md: `| \\`event\\` [level] | when | fields |`."""
    entries: dict[str, Entry] = {}
    for line in (text if text is not None else DOCS.read_text(encoding="utf-8")).splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        fields_cell = match.group("rest").rsplit("|", 1)[-1]
        while _PARENS.search(fields_cell):  # `mode` (`run`/`emergency`): values, not fields
            fields_cell = _PARENS.sub("", fields_cell)
        entries[match.group("event")] = Entry(
            levels=frozenset(match.group("levels").split("/")),
            fields=frozenset(re.findall(r"`([a-z_]+)`", fields_cell)),
        )
    return entries
