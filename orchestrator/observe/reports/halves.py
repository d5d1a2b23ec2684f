"""report.html written as two halves by two processes, then made one file.

The first half (the summary sections and the timelines: the part that reads the
transitions) and the second (the table of every target) are written as they are rendered,
each checked piece by piece for anything `scrub_text` would change (`CleanStream`). Joined,
they are the page, byte for byte, when neither half needs scrubbing and nothing to scrub
spans the seam either: anything `may_need_scrubbing` looks for is at most `reach()`
characters long, so a match across the seam lies within the last `reach()` characters of
the first half and the first `reach()` of the second. Otherwise the page is written whole
and scrubbed (`scrub_text`), as when it is written by one process.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from orchestrator.observe.redaction import may_need_scrubbing
from orchestrator.observe.reports.redacted import reach

_UTF8_MAX = 4  # bytes per character at most


def clean_across(head: Path, tail: Path) -> bool:
    """Whether nothing to scrub spans the end of `head` and the start of `tail`."""
    span = _UTF8_MAX * (reach() + 1)  # bytes holding at least reach() whole characters
    with open(head, "rb") as first:
        first.seek(max(0, first.seek(0, 2) - span))
        end = first.read().decode("utf-8", errors="ignore")  # a cut first character goes
    with open(tail, "rb") as second:
        start = second.read(span).decode("utf-8", errors="ignore")  # and a cut last one
    return not may_need_scrubbing([end + start])


def append(head: Path, tail: Path) -> None:
    """`tail`'s bytes added to the end of `head`."""
    with open(head, "ab") as out, open(tail, "rb") as source:
        shutil.copyfileobj(source, out, 1 << 20)
