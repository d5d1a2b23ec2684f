"""`report.md`: the report for people (a ticket, a change record, an auditor's folder)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from orchestrator.core.outcomes import is_success
from orchestrator.observe.reports.nextsteps import NextSteps
from orchestrator.observe.reports.summary import ReasonGroup

FAILED_TXT_NOTE = "`failed.txt` is the file next to this report."


def render_markdown(report: dict[str, Any], steps: NextSteps, groups: list[ReasonGroup]) -> str:
    """The Markdown text of a `build_report` dict, what next, and the reason groups."""
    parts = [
        _header(report),
        _next(steps),
        _totals(report),
        _clusters(report),
        _groups(report, groups),
        _errors(report),
        _attention(report),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"


def _next(steps: NextSteps) -> str:
    """Why the run stopped and the commands that continue it."""
    if steps.stopped is None and not steps.steps:
        return ""
    lines = ["## Why it stopped, and what next", ""]
    if steps.stopped is not None:
        lines += [f"Stopped: {steps.stopped}.", ""]
    lines += [f"- `{step.command}`: {step.why}" for step in steps.steps]
    if any("@failed.txt" in step.command for step in steps.steps):
        lines += ["", FAILED_TXT_NOTE]
    return "\n".join(lines).rstrip()


def _groups(report: dict[str, Any], groups: list[ReasonGroup]) -> str:
    """Every target not rekeyed (plan: not ready), by reason, with its names and hint."""
    if not groups:
        return ""
    what = "Not ready" if report["run"]["mode"] == "plan" else "Not rekeyed"
    rows = [
        (g.label, _text(g.code), str(len(g.targets)), ", ".join(g.targets), g.hint or "-")
        for g in groups
    ]
    header = ("outcome", "code", "count", "targets", "hint")
    return f"## {what}, by reason\n\n" + _table(header, rows)


def _header(report: dict[str, Any]) -> str:
    run = report["run"]
    title = "Plan" if run["mode"] == "plan" else "Rekey run"
    rows = [
        ("Run id", f"`{run['run_id']}`"),
        ("Mode", run["mode"]),
        ("Rotation", f"rekey-{run['operation']}"),
        ("Reason", run["reason"] or "-"),
        ("Status", f"{run['status']} (exit code {_text(run['exit_code'])})"),
        ("Operator", run["operator"]),
        ("Inventory", f"`{run['inventory']['path']}` (sha256 `{run['inventory']['sha256']}`)"),
        ("Started", _text(run["started_at"])),
        ("Ended", _text(run["ended_at"])),
        ("Duration", _seconds(run["duration_s"])),
    ]
    if report["tls_verify_disabled"]:
        rows.append(("TLS verification disabled", ", ".join(report["tls_verify_disabled"])))
    return f"# {title} {run['run_id']}\n\n" + _table(("", ""), rows)


def _totals(report: dict[str, Any]) -> str:
    totals = report["totals"]
    return "## Totals\n\n" + _table(tuple(totals), [tuple(str(v) for v in totals.values())])


def _clusters(report: dict[str, Any]) -> str:
    clusters = report["clusters"]
    if not clusters:
        return ""
    names = list(clusters[0]["outcomes"])
    header = ("cluster", "targets", *names, "retries", "duration", "reasons", "providers")
    rows = [
        (
            c["name"],
            str(c["targets"]),
            *(str(c["outcomes"].get(n, 0)) for n in names),
            str(c["retries"]),
            _seconds(c["duration_s"]),
            _reasons(c["reasons"]),
            _providers(c["providers"]),
        )
        for c in clusters
    ]
    return "## Per cluster\n\n" + _table(header, rows)


def _errors(report: dict[str, Any]) -> str:
    errors = report["errors"]
    if not errors:
        return "## Errors\n\nNone."
    rows = [
        (
            _text(e["code"]),
            _text(e["class"]),
            str(e["count"]),
            ", ".join(e["targets"]),
            e["message"],
            e["hint"] or "-",
        )
        for e in errors
    ]
    header = ("code", "class", "count", "targets", "message", "hint")
    return "## Errors\n\n" + _table(header, rows)


def _attention(report: dict[str, Any]) -> str:
    """Every target that did not succeed, with why: the list someone has to act on."""
    rows = [
        (
            t["target"],
            _text(t["provider"]),
            _text(t["outcome"]),
            _text(t["reason"]),
            str(t["attempts"]),
            _text((t["error"] or {}).get("code")),
            (t["error"] or {}).get("message", "") or _facts(t["facts"]),
        )
        for t in report["targets"]
        if not is_success(t["outcome"])
    ]
    if not rows:
        return ""
    header = ("target", "provider", "outcome", "reason", "attempts", "code", "detail")
    return "## Targets needing attention\n\n" + _table(header, rows)


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [_row(header), _row(["---"] * len(header))]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _cell(text: str) -> str:
    # A pipe or a newline inside a cell would break the table.
    return text.replace("|", "\\|").replace("\n", " ")


def _text(value: object) -> str:
    return "-" if value is None else str(value)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _providers(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items()) or "-"


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in reasons.items()) or "-"


def _facts(facts: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in facts.items())
