"""The report files written the cheap way (rows read through `ledger/report_rows.py`, the
report not deep-copied by `redact`, report.json and report.html written a piece at a time)
are byte for byte the one-shot path: `redact(document)`, every text rendered whole and
`scrub_text` over it. On a real ledger of 1,100 targets in 300 clusters with every
outcome, retries, errors whose messages hold a registered secret, a credential header or
a private key, facts under a secret-named key; with no secret registered, with one, and
with one that only ever occurs across two pieces of report.html."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.targets import TargetKey
from orchestrator.ledger import report_rows
from orchestrator.ledger.records import RunRecord, TargetRow, Transition
from orchestrator.ledger.store import Ledger
from orchestrator.observe import reports
from orchestrator.observe.redaction import (
    REDACTED,
    clear_secrets,
    redact,
    register_secret,
    scrub_text,
)
from orchestrator.observe.reports import FILE_NAMES, document, html, summary
from orchestrator.observe.reports.junit import render_junit
from orchestrator.observe.reports.markdown import render_markdown
from orchestrator.observe.reports.nextsteps import next_steps
from tests.synthetic_run import SECRET, make_rows, make_run

COPIES = 100  # x 11 synthetic targets in 3 clusters
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----"
# Found by scrub_text in the whole page only: it spans two clusters' timelines, which are
# two pieces of the streamed page.
ACROSS_PIECES = '</section>\n<section class="cluster-timeline" id="timeline-east-01-001">'


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    clear_secrets()
    yield
    clear_secrets()


def _fleet(dirty: bool) -> tuple[RunRecord, list[TargetRow], list[Transition]]:
    """The synthetic run copied COPIES times under other cluster names."""
    run = make_run()
    rows, steps = make_rows(run)
    many_rows: list[TargetRow] = []
    many_steps: list[Transition] = []
    for copy in range(COPIES):
        keys = {row.key: TargetKey(f"{row.key.cluster}-{copy:03d}", row.key.svm) for row in rows}
        many_rows += [_variant(replace(row, key=keys[row.key]), copy, dirty) for row in rows]
        many_steps += [replace(step, key=keys[step.key]) for step in steps]
    return run, many_rows, many_steps


def _variant(row: TargetRow, copy: int, dirty: bool) -> TargetRow:
    kms: dict[str, str] = {"region": "us-east-1"}
    facts: dict[str, Any] = {"version": "9.14.1", "nodes": [f"n{copy}"], "kms": kms}
    if not dirty:
        message = row.error_message and row.error_message.replace(SECRET, "a typo")
        return replace(row, facts=facts, error_message=message)
    kms["api_token"] = "t0ken-value"  # a secret-named key, in the facts
    extra = {0: f" (sent Authorization: Bearer abcdef{copy}ghij)", 1: f" key: {PEM}"}
    message = (row.error_message or "") + extra.get(copy % 3, "")
    return replace(row, facts=facts, error_message=message if row.error_message else None)


def _stored(tmp_path: Path, dirty: bool) -> tuple[RunRecord, list[TargetRow], list[Transition]]:
    """The fleet written to a real ledger and read back the way the reports read it."""
    run, rows, steps = _fleet(dirty)
    with Ledger.open(tmp_path / "state.db") as ledger:
        ledger.create_run(run)
        ledger.add_targets(rows)
        by_key = {row.key: row for row in rows}
        ledger.write([(by_key[step.key], step) for step in steps])
        targets = report_rows.targets(ledger, run.run_id)
        return run, targets, report_rows.transitions(ledger, run.run_id, targets)


def _one_shot(
    run: RunRecord, rows: list[TargetRow], steps: list[Transition], state: Path
) -> dict[str, str]:
    """Every file as the slow path makes it: a redacted copy, each text whole, scrubbed."""
    report = redact(document.build_report(run, rows, steps))
    ledger = str(state.resolve())
    plan = next_steps(run, rows, state=ledger, failed_txt="failed.txt")
    groups = summary.reason_groups(rows)
    texts = {
        "json": json.dumps(report, indent=2, ensure_ascii=False) + "\n",
        "md": render_markdown(report, plan, groups),
        "html": html.render_html(report, run, rows, steps, plan, groups),
        "junit": render_junit(report),
        "failed": reports.render_failed(run, rows),
    }
    return {fmt: scrub_text(text) for fmt, text in texts.items()}


@pytest.mark.parametrize(
    ("dirty", "secret"),
    [(False, None), (False, SECRET), (True, None), (True, SECRET), (False, ACROSS_PIECES)],
)
def test_written_reports_are_the_one_shot_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dirty: bool, secret: str | None
) -> None:
    monkeypatch.setattr(reports, "_JSON_BLOCK", 5)  # many blocks, many pieces
    monkeypatch.setattr(html, "TABLE_PIECE", 7)
    if secret is not None:
        register_secret(secret)
    run, rows, steps = _stored(tmp_path, dirty)
    assert len(rows) == 11 * COPIES and len(steps) > 4 * len(rows)
    state = tmp_path / "state.db"
    written = reports.write_reports(tmp_path / "out", run, rows, steps, state=state)
    expected = _one_shot(run, rows, steps, state)
    for fmt in FILE_NAMES:
        assert written[fmt].read_text(encoding="utf-8") == expected[fmt], fmt
        assert reports.render(fmt, run, rows, steps, state=state) == expected[fmt], fmt
    page = written["html"].read_text(encoding="utf-8")
    assert (REDACTED in page) is (dirty or secret == ACROSS_PIECES)  # the clean fleet: none
    if secret is not None:
        assert all(secret not in path.read_text(encoding="utf-8") for path in written.values())
    assert sorted(p.name for p in written["json"].parent.iterdir()) == sorted(FILE_NAMES.values())
