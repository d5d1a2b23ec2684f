"""The report directory of a run: report.json, report.md, report.html, junit.xml, failed.txt.

Every format is rendered from the ledger's rows (`RunRecord`, `TargetRow`, `Transition`)
through `build_report`, so a report written at the end of a run and one rendered later by
`ontap-rekey report RUN_ID` are identical. The commands report.md and report.html suggest
name the ledger by its absolute path (`state`), the same from wherever it is rendered.
Every rendered text also passes the log redaction, so a secret that slipped into an error
message never reaches a report file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TextIO, TypeVar, cast

from orchestrator.ledger.records import RunRecord, TargetRow, Transition
from orchestrator.observe.redaction import scrub_text
from orchestrator.observe.reports import collector, document, encoding, forked, halves, summary
from orchestrator.observe.reports.html import head_pieces as html_head
from orchestrator.observe.reports.html import html_pieces
from orchestrator.observe.reports.html import tail_pieces as html_tail
from orchestrator.observe.reports.junit import render_junit
from orchestrator.observe.reports.markdown import render_markdown
from orchestrator.observe.reports.nextsteps import NextSteps, next_steps
from orchestrator.observe.reports.redacted import CleanStream, redacted
from orchestrator.observe.text import plural

__all__ = [
    "FILE_NAMES",
    "SCHEMA_ID",
    "ReportFormat",
    "build_report",
    "load_schema",
    "render",
    "render_failed",
    "write_reports",
    "write_reports_beside",
]

SCHEMA_ID = document.SCHEMA_ID
ReportFormat = Literal["json", "md", "html", "junit", "failed"]
T = TypeVar("T")
_JSON_BLOCK = 64  # lines of report.json (a target each; ~80 KB) joined and scrubbed at a time
FILE_NAMES: dict[ReportFormat, str] = {
    "json": "report.json",
    "md": "report.md",
    "html": "report.html",
    "junit": "junit.xml",
    "failed": "failed.txt",
}
# The parts the files are written in, in order: report.html in two halves (two processes).
_HTML_TAIL = "html.tail"
_PARTS = ("json", "md", "html", _HTML_TAIL, "junit", "failed")
_PART_FILES: dict[str, str] = dict(FILE_NAMES) | {_HTML_TAIL: FILE_NAMES["html"]}
# Written by the forked child: about as much CPU as the rest and the recap, which stay
# here (docs/performance.md, "Report phase, second pass").
_FORKED_PARTS = frozenset({"json", "md", _HTML_TAIL, "junit"})


def build_report(
    run: RunRecord, targets: Sequence[TargetRow], transitions: Sequence[Transition]
) -> dict[str, Any]:
    """The `report.json` document (schema `ontap-rekey/report/v1`), secrets redacted."""
    return redacted(document.build_report(run, targets, transitions))


def render(
    fmt: ReportFormat,
    run: RunRecord,
    targets: Sequence[TargetRow],
    transitions: Sequence[Transition],
    *,
    state: Path | None = None,
) -> str:
    """The text of one report format; `state` is the ledger the run lives in."""
    with collector.paused():
        report = build_report(run, targets, transitions)
        return _render(fmt, report, run, targets, transitions, state)


def _render(
    fmt: ReportFormat,
    report: dict[str, Any],
    run: RunRecord,
    targets: Sequence[TargetRow],
    transitions: Sequence[Transition],
    state: Path | None,
) -> str:
    if fmt == "json":
        return "".join(_json_blocks(report))  # scrubbed block by block
    if fmt == "html":
        return scrub_text("".join(_html(report, run, targets, transitions, state)))
    if fmt == "md":
        steps, groups = _next_and_groups(run, targets, state)
        text = render_markdown(report, steps, groups)
    elif fmt == "junit":
        text = render_junit(report)
    else:
        text = render_failed(run, targets)
    return scrub_text(text)


def _html(
    report: dict[str, Any],
    run: RunRecord,
    targets: Sequence[TargetRow],
    transitions: Sequence[Transition],
    state: Path | None,
) -> Iterator[str]:
    steps, groups = _next_and_groups(run, targets, state)
    return html_pieces(report, run, targets, transitions, steps, groups)


def _next_and_groups(
    run: RunRecord, targets: Sequence[TargetRow], state: Path | None
) -> tuple[NextSteps, list[summary.ReasonGroup]]:
    ledger = str(state.resolve()) if state is not None else None
    steps = next_steps(run, targets, state=ledger, failed_txt="failed.txt")
    return steps, summary.reason_groups(targets)


def render_failed(run: RunRecord, targets: Sequence[TargetRow]) -> str:
    """`failed.txt`: one `cluster/svm` a line for every target that did not succeed.

    Usable as `--targets @failed.txt`; `#` lines are comments to the selector parser.
    """
    keys = sorted(row.key for row in targets if not summary.is_success(run, row))
    what = "not ready" if summary.is_plan(run) else "not rekeyed"
    header = f"# ontap-rekey {run.mode.value} {run.run_id}: {plural(len(keys), 'target')} {what}\n"
    return header + "".join(f"{key}\n" for key in keys)


def write_reports(
    report_dir: Path,
    run: RunRecord,
    targets: Sequence[TargetRow],
    transitions: Sequence[Transition],
    *,
    state: Path | None = None,
) -> dict[str, Path]:
    """Write every format into `report_dir` (created); returns format -> path."""
    written, _ = write_reports_beside(report_dir, run, targets, transitions, _nothing, state=state)
    return written


def write_reports_beside(
    report_dir: Path,
    run: RunRecord,
    targets: Sequence[TargetRow],
    transitions: Sequence[Transition] | Callable[[], Sequence[Transition]],
    work: Callable[[], T],
    *,
    state: Path | None = None,
) -> tuple[dict[str, Path], T]:
    """`write_reports`, with `work` done meanwhile (on the other core, where a child is
    forked: `forked.py`); format -> path and `work`'s result, once every file is in place.
    A file that cannot be written raises its error first, as when `work` follows.
    `transitions` may be how to read them: only this process does, once the child is
    forked (only report.html's first half, written here, shows them)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = {part: report_dir / _PART_FILES[part] for part in _PARTS}
    with collector.paused():  # ~1 million objects, none in a cycle
        steps = transitions if callable(transitions) else partial(_given, transitions)
        page = _Page(run, targets, steps, state)
        place = partial(_place, paths, page)
        result = forked.write_files(paths, page.write, _FORKED_PARTS, work, place)
    return {fmt: report_dir / name for fmt, name in FILE_NAMES.items()}, result


def _nothing() -> None:
    return None


def _given(transitions: Sequence[Transition]) -> Sequence[Transition]:
    return transitions


class _Page:
    """Every report file of one run, written a part at a time."""

    def __init__(
        self,
        run: RunRecord,
        targets: Sequence[TargetRow],
        transitions: Callable[[], Sequence[Transition]],
        state: Path | None,
    ) -> None:
        self.run, self.targets, self.state = run, targets, state
        self._read, self._reader = transitions, os.getpid()
        self._steps: Sequence[Transition] | None = None
        self._report: dict[str, Any] | None = None
        self._summary: dict[str, Any] | None = None

    @property
    def report(self) -> dict[str, Any]:
        """The report document, built on first use: by the child, where one is forked (the
        run's own parts need only its summary)."""
        if self._report is None:
            self._report = build_report(self.run, self.targets, ())  # it shows no transition
        return self._report

    @property
    def summary(self) -> dict[str, Any]:
        """The document's every section but `targets` (report.html's first half), the same
        values redacted the same way (`redacted` takes each section on its own)."""
        if self._report is not None:
            return self._report
        if self._summary is None:
            self._summary = redacted(document.build_summary(self.run, self.targets))
        return self._summary

    @property
    def transitions(self) -> Sequence[Transition]:
        """Read on first use, by the process that was given them (it holds the ledger: a
        forked child must not use its SQLite connection; its parts never need them)."""
        if self._steps is None:
            if os.getpid() != self._reader:
                raise RuntimeError("the transitions are read by the run's process only")
            self._steps = self._read()
        return self._steps

    def write(self, part: str, handle: TextIO) -> bool:
        """One part into `handle`; False for a half of report.html that needs scrubbing
        (then left unfinished: the page is written whole instead, `_place`)."""
        if part == "json":  # the largest file: written as it is encoded, never held whole
            _write_all(_json_blocks(self.report), handle)
        elif part == "html":  # report.html's first half, written as it is rendered
            steps, groups = _next_and_groups(self.run, self.targets, self.state)
            args = (self.summary, self.run, self.targets, self.transitions, steps, groups)
            return _write_while_clean(html_head(*args), handle)
        elif part == _HTML_TAIL:  # and its second half
            return _write_while_clean(html_tail(self.report), handle)
        elif part == "failed":  # from the rows alone (`_render`'s text, without the document)
            handle.write(scrub_text(render_failed(self.run, self.targets)))
        else:  # md, junit: they show no transition
            fmt = cast(ReportFormat, part)
            handle.write(_render(fmt, self.report, self.run, self.targets, (), self.state))
        return True

    def whole_html(self) -> str:
        return scrub_text(
            "".join(_html(self.report, self.run, self.targets, self.transitions, self.state))
        )


def _place(
    paths: dict[str, Path],
    page: _Page,
    part: str,
    temps: dict[str, Path],
    clean: Mapping[str, bool],
) -> None:
    """A part's file put in place: renamed to its path; report.html once its second half
    is written, the two halves joined (or, where one needs scrubbing, the page whole)."""
    if part == "html":
        return  # with its second half
    if part != _HTML_TAIL:
        os.replace(temps.pop(part), paths[part])
        return
    head, tail = temps["html"], temps[_HTML_TAIL]
    if clean["html"] and clean[_HTML_TAIL] and halves.clean_across(head, tail):
        halves.append(head, tail)
    else:
        with open(head, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(page.whole_html())
    os.replace(head, paths["html"])
    del temps["html"]  # the second half's file is removed with the other temporaries


def _write_all(texts: Iterable[str], handle: TextIO) -> None:
    for text in texts:
        handle.write(text)


def _write_while_clean(pieces: Iterable[str], handle: TextIO) -> bool:
    """Write the pieces as they come while nothing in them needs scrubbing (nearly always);
    False, and stop, at the first piece that may."""
    stream = CleanStream()
    for piece in pieces:
        if not stream.clean(piece):
            return False
        handle.write(piece)
    return True


def _json_blocks(report: dict[str, Any]) -> Iterator[str]:
    """report.json as scrubbed blocks of whole lines, one newline at the end.

    The same text and the same scrubbing as the whole document at once: with `indent` every
    string is on one line (JSON escapes newlines), so no secret or credential pattern spans
    two blocks. At 10,000 targets the document, its encoder's chunks and its scrubbed copy
    held at once were ~55 MB of the run's peak memory.
    """
    pending: list[str] = []
    for lines in encoding.lines(report):  # a top-level member, or one target, at a time
        pending.append(lines)
        if len(pending) >= _JSON_BLOCK:
            yield scrub_text("".join(pending))
            pending = []
    yield scrub_text("".join(pending) + "\n")


def load_schema() -> dict[str, Any]:
    """The JSON Schema of report.json, shipped as package data."""
    text = resources.files(__package__).joinpath("report.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
