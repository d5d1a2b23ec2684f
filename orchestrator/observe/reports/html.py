"""`report.html`: one self-contained page (inline CSS, inline SVG, no script, no fetch).

It must open from a USB stick on an air-gapped laptop, so nothing is loaded from anywhere:
the timeline is an inline SVG per cluster, tooltips are SVG `<title>` elements.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from orchestrator.core.outcomes import NOT_READY, READY
from orchestrator.core.targets import TargetState
from orchestrator.ledger.records import RunRecord, TargetRow, Transition
from orchestrator.observe.reports import summary
from orchestrator.observe.reports.nextsteps import NextSteps
from orchestrator.observe.reports.summary import ReasonGroup
from orchestrator.observe.reports.timeline import (
    SEGMENT_KIND,
    time_bounds,
    transitions_by_target,
)
from orchestrator.observe.text import plural

LABEL_W = 190  # px: target labels left of the plot
PLOT_W = 900  # px: the time axis
LANE_H = 14
LANE_GAP = 4
AXIS_H = 22
TABLE_PIECE = 500  # target rows rendered (and written) at a time

OUTCOME_COLOURS = {
    "rekeyed": "#2e7d32",
    READY: "#2e7d32",
    "unverified": "#ef6c00",
    "failed": "#c62828",
    NOT_READY: "#c62828",
    "exhausted": "#8e24aa",
    "skipped": "#757575",
    "aborted": "#455a64",
    "pending": "#9e9e9e",
}
SEGMENT_COLOURS = {
    "attempt": "#1565c0",
    "job": "#42a5f5",
    "settle": "#ab47bc",
    "waiting": "#ffb300",
    "verify": "#26a69a",
}

_SPECIAL = re.compile("[&<>\"']")  # what html.escape replaces


def escape(text: str) -> str:
    """`html.escape(text)`; a text with nothing to escape (most of them) is not copied five
    times over (~170,000 texts at 10,000 targets)."""
    return html.escape(text) if _SPECIAL.search(text) else text


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#212121}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{border-radius:6px;padding:8px 14px;color:#fff;min-width:90px}
.card b{display:block;font-size:22px}
.meta td:first-child{color:#616161}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px;
border-radius:2px}
svg.timeline{display:block;font:11px system-ui,sans-serif;background:#fff}
svg .grid{stroke:#eee}svg .axis{fill:#757575}svg .lanebg{opacity:.22}
code{font-size:12px}.muted{color:#757575}
"""


def render_html(
    report: dict[str, Any],
    run: RunRecord,
    targets: Sequence[TargetRow],
    transitions: Sequence[Transition],
    steps: NextSteps,
    groups: list[ReasonGroup],
) -> str:
    """The HTML page: what next, totals, reasons and errors with hints, clusters, timelines."""
    return "".join(html_pieces(report, run, targets, transitions, steps, groups))


def html_pieces(
    report: dict[str, Any],
    run: RunRecord,
    targets: Sequence[TargetRow],
    transitions: Sequence[Transition],
    steps: NextSteps,
    groups: list[ReasonGroup],
) -> Iterator[str]:
    """`render_html`'s text a piece at a time (a cluster's timeline, a few hundred target
    rows), each built when it is asked for: the page is written as it is rendered."""
    yield from head_pieces(report, run, targets, transitions, steps, groups)
    yield from tail_pieces(report)


def head_pieces(
    report: dict[str, Any],
    run: RunRecord,
    targets: Sequence[TargetRow],
    transitions: Sequence[Transition],
    steps: NextSteps,
    groups: list[ReasonGroup],
) -> Iterator[str]:
    """The page up to its table of targets: the summary sections and the timelines (the
    only part that reads the transitions)."""
    title = escape(f"ontap-rekey {report['run']['mode']} {report['run']['run_id']}")
    yield (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{CSS}</style></head>\n<body>\n"
    )
    yield "\n".join(
        [
            _header(report),
            _next(steps),
            _cards(report["totals"]),
            _groups(report, groups),
            _errors(report["errors"]),
            _clusters(report["clusters"]),
            "",  # the timelines follow, after this part's newline
        ]
    )
    yield from _timelines(run, targets, transitions)


def tail_pieces(report: dict[str, Any]) -> Iterator[str]:
    """The rest of the page: the table of every target (from the report's `targets`)."""
    yield "\n"
    yield from _target_tables(report["targets"])
    yield "\n</body></html>\n"


def _header(report: dict[str, Any]) -> str:
    run = report["run"]
    rows = [
        ("Mode", run["mode"]),
        ("Status", f"{run['status']} (exit code {run['exit_code']})"),
        ("Reason", run["reason"] or "-"),
        ("Operator", run["operator"]),
        ("Inventory", f"{run['inventory']['path']} (sha256 {run['inventory']['sha256']})"),
        ("Started", run["started_at"]),
        ("Ended", run["ended_at"] or "-"),
        ("Duration", _seconds(run["duration_s"])),
    ]
    if report["tls_verify_disabled"]:
        rows.append(("TLS verification disabled", ", ".join(report["tls_verify_disabled"])))
    table = "".join(f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>" for k, v in rows)
    return f'<h1>{escape(run["run_id"])}</h1><table class="meta">{table}</table>'


def _next(steps: NextSteps) -> str:
    """Why the run stopped and the commands that continue it."""
    if steps.stopped is None and not steps.steps:
        return ""
    parts = ['<h2>Why it stopped, and what next</h2><div id="next">']
    if steps.stopped is not None:
        parts.append(f"<p>Stopped: {escape(steps.stopped)}.</p>")
    items = [f"<li><code>{escape(s.command)}</code>: {escape(s.why)}</li>" for s in steps.steps]
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    if any("@failed.txt" in step.command for step in steps.steps):
        parts.append('<p class="muted">failed.txt is the file next to this report.</p>')
    return "".join(parts) + "</div>"


def _groups(report: dict[str, Any], groups: list[ReasonGroup]) -> str:
    """Every target not rekeyed (plan: not ready), by reason, with its names and hint."""
    if not groups:
        return ""
    what = "Not ready" if report["run"]["mode"] == "plan" else "Not rekeyed"
    rows = [[g.label, g.code or "-", len(g.targets), ", ".join(g.targets), g.hint] for g in groups]
    header = ["outcome", "code", "count", "targets", "hint"]
    return f'<h2>{what}, by reason</h2><table id="reasons">' + _rows(header, rows) + "</table>"


def _cards(totals: dict[str, int]) -> str:
    cards = [
        f'<div class="card" style="background:{OUTCOME_COLOURS.get(name, "#546e7a")}">'
        f"<b>{count}</b>{escape(name)}</div>"
        for name, count in totals.items()
    ]
    return f'<h2>Totals</h2><div class="cards" id="totals">{"".join(cards)}</div>'


def _errors(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return '<h2>Errors</h2><p class="muted">None.</p>'
    rows = [
        [
            e["code"] or "-",
            e["class"] or "-",
            e["count"],
            ", ".join(e["targets"]),
            e["message"],
            e["hint"] or "-",
        ]
        for e in errors
    ]
    header = ["code", "class", "count", "targets", "message", "hint"]
    return '<h2>Errors</h2><table id="errors">' + _rows(header, rows) + "</table>"


def _clusters(clusters: list[dict[str, Any]]) -> str:
    if not clusters:
        return ""
    names = list(clusters[0]["outcomes"])
    header = ["cluster", "targets", *names, "retries", "duration"]
    rows = [
        [
            c["name"],
            c["targets"],
            *(c["outcomes"].get(n, 0) for n in names),
            c["retries"],
            _seconds(c["duration_s"]),
        ]
        for c in clusters
    ]
    return '<h2>Per cluster</h2><table id="clusters">' + _rows(header, rows) + "</table>"


def _timelines(
    run: RunRecord, targets: Sequence[TargetRow], transitions: Sequence[Transition]
) -> Iterator[str]:
    start, end = time_bounds(run.started_at, targets, transitions, run.ended_at)
    per_target = transitions_by_target(transitions)
    yield "<h2>Timeline</h2>" + _legend()
    for index, (cluster, rows) in enumerate(summary.by_cluster(targets).items()):
        lanes = [(r, per_target.get(r.key, _NO_STEPS)) for r in rows]
        yield ("\n" if index else "") + _cluster_timeline(cluster, lanes, start, end)


_NO_STEPS: list[Transition] = []


def _legend() -> str:
    kinds = [(kind, SEGMENT_COLOURS[kind]) for kind in dict.fromkeys(SEGMENT_KIND.values())]
    outcomes = [(name, colour) for name, colour in OUTCOME_COLOURS.items() if name != READY]
    items = [f'<span><i style="background:{c}"></i>{escape(n)}</span>' for n, c in kinds]
    items += [
        f'<span><i style="background:{c};border-radius:6px"></i>{escape(n)}</span>'
        for n, c in outcomes
    ]
    return (
        '<p class="legend">Segments: ' + "".join(items[: len(kinds)]) + "<br>Outcome (lane and "
        "end marker): " + "".join(items[len(kinds) :]) + "</p>"
    )


def _cluster_timeline(
    cluster: str, lanes: Sequence[tuple[TargetRow, Sequence[Transition]]], start: float, end: float
) -> str:
    height = AXIS_H + len(lanes) * (LANE_H + LANE_GAP) + 4
    width = LABEL_W + PLOT_W + 30
    scale = PLOT_W / (end - start)
    parts = list(_axis(start, end, height))
    for index, (row, steps) in enumerate(lanes):
        parts.append(_lane(row, steps, AXIS_H + index * (LANE_H + LANE_GAP), start, scale, end))
    svg = (
        f'<svg class="timeline" data-cluster="{escape(cluster)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of {escape(cluster)}">' + "".join(parts) + "</svg>"
    )
    return (
        f'<section class="cluster-timeline" id="timeline-{escape(cluster)}">'
        f"<h3>{escape(cluster)}</h3>{svg}</section>"
    )


def _axis(start: float, end: float, height: int) -> Iterable[str]:
    """Vertical grid lines with seconds since the run started."""
    step = _tick_step(end - start)
    tick = 0.0
    while tick <= end - start:
        x = LABEL_W + tick * PLOT_W / (end - start)
        yield f'<line class="grid" x1="{x:.1f}" y1="{AXIS_H - 6}" x2="{x:.1f}" y2="{height}"/>'
        yield (
            f'<text class="axis" x="{x:.1f}" y="{AXIS_H - 9}" text-anchor="middle">'
            f"{_tick_label(tick)}</text>"
        )
        tick += step


def _lane(
    row: TargetRow, steps: Sequence[Transition], y: int, start: float, scale: float, run_end: float
) -> str:
    """One target's lane: `timeline.build_lane`'s segments drawn as they are found, without
    a `Segment` or `Lane` object each (100,000 lanes, 400,000 transitions at 100,000
    targets); the same text (`tests/test_report_timeline.py` holds the two equal)."""
    outcome = row.outcome or "pending"
    colour = OUTCOME_COLOURS.get(outcome, "#9e9e9e")
    label = f"{row.key.svm} · {outcome}" + (f" ({row.reason})" if row.reason else "")
    # html.escape maps each character on its own: a text's escape is its pieces' escapes
    # joined, so the key is escaped once a lane and each tooltip built from escaped pieces.
    shown_key = escape(str(row.key))
    parts = [
        f'<text x="4" y="{y + LANE_H - 3}">{escape(_clip(label, 30))}'
        f"<title>{shown_key}: {escape(label)}</title></text>"
    ]
    # The last DONE: a target aborted by an interrupt is DONE twice once `resume` rekeyed it.
    done_at = None
    for step in steps:
        if step.state is _DONE:
            done_at = step.at
    end = done_at if done_at is not None else row.finished_at
    if row.started_at is not None:  # never started (skipped, aborted): a marker alone
        x0 = LABEL_W + (row.started_at - start) * scale
        x1 = LABEL_W + ((end or row.started_at) - start) * scale
        parts.append(
            f'<rect class="lanebg" x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{LANE_H}" fill="{colour}"/>'
        )
    last = len(steps) - 1
    for index, step in enumerate(steps):
        kind = SEGMENT_KIND.get(step.state)
        if kind is None:
            continue
        stop = steps[index + 1].at if index < last else (end or run_end)
        parts.append(_segment(shown_key, kind, step, max(stop, step.at), y, start, scale))
    if end is not None:
        cx = LABEL_W + (end - start) * scale
        shown = escape(outcome)
        parts.append(
            f'<circle class="outcome-{shown}" cx="{cx:.1f}" cy="{y + LANE_H / 2}" '
            f'r="4.5" fill="{colour}" stroke="#fff"><title>{shown_key}: '
            f"{shown}</title></circle>"
        )
    return "".join(parts)


def _segment(
    shown_key: str, kind: str, step: Transition, stop: float, y: int, start: float, scale: float
) -> str:
    """A segment of `kind` from `step` to `stop`; `shown_key` is the target, escaped."""
    x = LABEL_W + (step.at - start) * scale
    duration = stop - step.at
    width = max(duration * scale, 1.5)  # an instant still shows a sliver
    event = _EVENTS.get(step.event) or _escaped_event(step.event)
    return (
        f'<rect class="seg seg-{kind}" x="{x:.1f}" y="{y + 2}" width="{width:.1f}" '
        f'height="{LANE_H - 4}" fill="{SEGMENT_COLOURS[kind]}">'
        f"<title>{shown_key} {kind} {duration:.1f} s (attempt {step.attempt}, {event})"
        "</title></rect>"
    )


_DONE = TargetState.DONE
_EVENTS: dict[str, str] = {}  # an event name, escaped (a few dozen names in all)


def _escaped_event(event: str) -> str:
    shown = escape(event)
    if len(_EVENTS) < 1024:
        _EVENTS[event] = shown
    return shown


def _target_tables(targets: list[dict[str, Any]]) -> Iterator[str]:
    header = [
        "target",
        "provider",
        "outcome",
        "reason",
        "attempts",
        "wave",
        "key id before",
        "key id after",
        "job",
        "error",
        "hint",
    ]
    yield (
        f"<h2>Targets</h2><details><summary>{plural(len(targets), 'target')}</summary>"
        f'<table id="targets">{_head(header)}<tbody>'
    )
    for first in range(0, len(targets), TABLE_PIECE):
        yield "".join([_target_row(t) for t in targets[first : first + TABLE_PIECE]])
    yield "</tbody></table></details>"


def _target_row(t: dict[str, Any]) -> str:
    """`_body`'s text of one target's cells; a text cell (nearly all of them) written
    without `_td`'s checks (1.1 million cells at 100,000 targets)."""
    cells = [f"<td>{escape(c)}</td>" if type(c) is str else _td(c) for c in _target_cells(t)]
    return "<tr>" + "".join(cells) + "</tr>"


def _target_cells(t: dict[str, Any]) -> list[object]:
    return [
        t["target"],
        t["provider"] or "",
        t["outcome"] or "pending",
        t["reason"] or "",
        t["attempts"],
        "" if t["wave"] is None else t["wave"],
        t["key_id_before"] or "",
        t["key_id_after"] or "",
        t["job_uuid"] or "",
        _error_text(t),
        (t["error"] or {}).get("hint", ""),
    ]


def _error_text(target: dict[str, Any]) -> str:
    error = target["error"]
    if error is None:
        return ", ".join(f"{k}={v}" for k, v in target["facts"].items())
    return f"{error['code'] or error['class']}: {error['message']}"


def _rows(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    return f"{_head(header)}<tbody>{_body(rows)}</tbody>"


def _head(header: Sequence[str]) -> str:
    return "<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in header) + "</tr></thead>"


def _body(rows: Iterable[Sequence[object]]) -> str:
    return "".join("<tr>" + "".join(_td(cell) for cell in row) + "</tr>" for row in rows)


def _td(cell: object) -> str:
    numeric = isinstance(cell, int | float)
    return f'<td class="n">{cell}</td>' if numeric else f"<td>{escape(str(cell))}</td>"


def _tick_step(total: float) -> float:
    """A round step giving 5-12 ticks over `total` seconds."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400):
        if total / step <= 12:
            return float(step)
    return total / 10


def _tick_label(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m" if seconds % 60 == 0 else f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
