"""The report directory: report.json (schema), report.md, report.html, junit.xml, failed.txt."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from orchestrator.core.selectors import parse_targets_file
from orchestrator.core.targets import Outcome, TargetKey
from orchestrator.ledger.records import TargetRow, Transition
from orchestrator.ledger.store import Ledger
from orchestrator.observe.redaction import clear_secrets, register_secret
from orchestrator.observe.reports import FILE_NAMES, SCHEMA_ID, build_report, load_schema, render
from orchestrator.observe.reports import write_reports as write_all
from tests.synthetic_run import RUN_ID, SECRET, make_plan, make_rows, make_run

RUN = make_run()
ROWS, TRANSITIONS = make_rows(RUN)


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    clear_secrets()


@pytest.fixture
def written(tmp_path: Path) -> dict[str, Path]:
    register_secret(SECRET)
    return write_all(tmp_path / "reports" / RUN_ID, RUN, ROWS, TRANSITIONS)


def report_json(written: dict[str, Path]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(written["json"].read_text(encoding="utf-8"))
    return data


def test_synthetic_run_has_every_outcome() -> None:
    """The fixture is what the other tests claim it is: 3 clusters, every outcome."""
    assert {row.outcome for row in ROWS} == {outcome.value for outcome in Outcome}
    assert len({row.key.cluster for row in ROWS}) == 3


def test_every_file_is_written_and_no_temp_file_is_left(written: dict[str, Path]) -> None:
    """write_reports writes each format under its spec name, atomically (no temp left)."""
    folder = written["json"].parent
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILE_NAMES.values())


def test_report_json_validates_against_the_shipped_schema(written: dict[str, Path]) -> None:
    """report.json is valid against report.schema.json (package data)."""
    data = report_json(written)
    jsonschema.Draft202012Validator.check_schema(load_schema())
    jsonschema.validate(data, load_schema(), cls=jsonschema.Draft202012Validator)
    assert data["schema"] == SCHEMA_ID == "ontap-rekey/report/v1"


def test_plan_report_validates_too() -> None:
    """A plan's report (ready / not_ready with facts) is valid against the same schema."""
    run, rows = make_plan()
    data = build_report(run, rows, [])
    jsonschema.validate(data, load_schema(), cls=jsonschema.Draft202012Validator)
    assert data["totals"] | {"ready": 2, "not_ready": 2} == data["totals"]
    not_ready = {t["target"]: t for t in data["targets"] if t["outcome"] == "not_ready"}
    assert not_ready["south-03/-"]["reason"] == "unsupported_version"
    assert not_ready["south-03/-"]["facts"] == {"version": "9.10.1"}
    assert data["run"]["exit_code"] == 5


def test_totals_equal_the_per_target_rows(written: dict[str, Path]) -> None:
    """Totals, per-cluster counts and per-error counts all add up to the target rows."""
    data = report_json(written)
    by_outcome = Counter(t["outcome"] for t in data["targets"])
    totals = data["totals"]
    assert totals["targets"] == len(ROWS) == len(data["targets"])
    assert {k: v for k, v in totals.items() if k in by_outcome} == dict(by_outcome)
    assert sum(c["targets"] for c in data["clusters"]) == len(ROWS)
    for name in by_outcome:
        assert sum(c["outcomes"][name] for c in data["clusters"]) == by_outcome[name]
    with_error = sum(t["error"] is not None for t in data["targets"])
    assert sum(e["count"] for e in data["errors"]) == with_error
    # svm_b: 3 attempts, svm_hr: 3 attempts (exhausted): 2 retries each, attempts after the first
    assert totals["retries"] == sum(t["retries"] for t in data["targets"]) == 4


def test_report_json_run_section_and_timings(written: dict[str, Path]) -> None:
    """Run metadata, the exit code, TLS warnings and duration percentiles are reported."""
    data = report_json(written)
    run = data["run"]
    assert run["run_id"] == RUN_ID
    assert run["inventory"]["sha256"] == "0" * 64
    assert (run["status"], run["exit_code"]) == ("aborted", 4)
    assert run["started_at"] == "2026-01-01T00:00:00.000Z"
    assert data["tls_verify_disabled"] == ["south-03"]
    timing = data["timings"]["target_duration_s"]
    assert timing["p50"] <= timing["p95"] <= timing["max"]
    assert data["timings"]["wall_s"] == 27.0


def test_target_entries_carry_error_hint_and_key_ids(written: dict[str, Path]) -> None:
    """A failed target names its error {code, message, class, hint} and its key ids."""
    targets = {t["target"]: t for t in report_json(written)["targets"]}
    failed = targets["east-01/svm_e"]
    assert failed["outcome"] == "failed"
    assert failed["error"]["code"] == "65537547"
    assert failed["error"]["hint"].startswith("Check the key id")
    rekeyed = targets["east-01/svm_b"]
    assert (rekeyed["key_id_before"], rekeyed["key_id_after"]) == ("key-old", "key-new")
    assert rekeyed["job_uuid"] == "job-east-01/svm_b"
    assert (rekeyed["attempts"], rekeyed["retries"]) == (3, 2)


def test_no_report_contains_a_registered_secret(written: dict[str, Path]) -> None:
    """An error message that carried the password is scrubbed in every file."""
    for path in written.values():
        assert SECRET not in path.read_text(encoding="utf-8"), path.name
    assert "[REDACTED]" in written["json"].read_text(encoding="utf-8")


def test_junit_counts(written: dict[str, Path]) -> None:
    """Cluster = suite, SVM = case; failed/exhausted/unverified fail, skipped/aborted skip."""
    root = ET.parse(written["junit"]).getroot()
    assert root.tag == "testsuites"
    suites = {suite.get("name"): suite for suite in root.findall("testsuite")}
    assert set(suites) == {"east-01", "west-02", "south-03"}
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("11", "3", "4")
    east = suites["east-01"]
    assert (east.get("tests"), east.get("failures"), east.get("skipped")) == ("5", "2", "0")
    cases = {case.get("name"): case for case in east.findall("testcase")}
    failure = cases["svm_d"].find("failure")
    assert failure is not None
    assert failure.get("type") == "unverified"
    assert "read-back" in (failure.get("message") or "")
    assert cases["svm_a"].find("failure") is None
    west = suites["west-02"]
    assert (west.get("failures"), west.get("skipped")) == ("1", "2")


def test_failed_txt_selects_exactly_the_targets_not_rekeyed(written: dict[str, Path]) -> None:
    """failed.txt parses as a --targets file and lists every target that is not rekeyed."""
    keys = parse_targets_file(written["failed"].read_text(encoding="utf-8"))
    expected = {row.key for row in ROWS if row.outcome != "rekeyed"}
    assert keys == expected
    assert TargetKey("south-03", "-") in keys


def test_failed_txt_of_a_plan_lists_the_not_ready() -> None:
    """For a plan, failed.txt is the not-ready targets."""
    run, rows = make_plan()
    keys = parse_targets_file(render("failed", run, rows, []))
    assert keys == {TargetKey("west-02", "svm_hr"), TargetKey("south-03", "-")}


def test_html_is_self_contained(written: dict[str, Path]) -> None:
    """No script, stylesheet, image or font is fetched: nothing with src/href to a URL."""
    html = written["html"].read_text(encoding="utf-8")
    assert "<script" not in html
    assert "<link" not in html
    assert re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html) is None
    assert re.search(r"url\(\s*['\"]?(https?:)?//", html) is None
    assert "@import" not in html
    assert "<style>" in html


def test_html_has_totals_errors_and_a_timeline_per_cluster(written: dict[str, Path]) -> None:
    """Totals, the error table with hints, and one timeline SVG per cluster."""
    html = written["html"].read_text(encoding="utf-8")
    for cluster in ("east-01", "west-02", "south-03"):
        assert f'<svg class="timeline" data-cluster="{cluster}"' in html
    assert 'id="totals"' in html
    assert 'id="errors"' in html
    assert "Check the key id and the IAM policy" in html
    # waits and jobs are drawn as segments from the transitions
    assert 'class="seg seg-waiting"' in html
    assert 'class="seg seg-job"' in html


def test_markdown_contains_the_totals(written: dict[str, Path]) -> None:
    """report.md has the totals row, per-cluster rows and the errors with hints."""
    md = written["md"].read_text(encoding="utf-8")
    assert "| targets | rekeyed | unverified | failed | exhausted | skipped | aborted |" in md
    assert "| 11 | 4 | 1 | 1 | 1 | 3 | 1 | 4 |" in md
    assert "| east-01 | 5 | 3 | 1 | 1 |" in md
    assert "Check the key id" in md


def test_a_run_in_flight_renders_pending_targets() -> None:
    """An active run (no outcome yet for some targets) renders without an exit code."""
    from dataclasses import replace

    from orchestrator.core.targets import TargetState
    from orchestrator.ledger.records import RunStatus

    run = replace(RUN, status=RunStatus.ACTIVE, ended_at=None)
    rows: list[TargetRow] = [
        *ROWS[:-1],
        replace(ROWS[-1], outcome=None, state=TargetState.SUBMITTED),
    ]
    transitions: list[Transition] = TRANSITIONS[:-1]
    data = build_report(run, rows, transitions)
    jsonschema.validate(data, load_schema(), cls=jsonschema.Draft202012Validator)
    assert data["run"]["exit_code"] is None
    assert data["totals"]["pending"] == 1
    assert 'data-cluster="south-03"' in render("html", run, rows, transitions)


def test_rendering_is_deterministic(tmp_path: Path) -> None:
    """What a run renders from its rows in memory is what `report RUN_ID` renders from the
    ledger later: the rows go through a real SQLite ledger and back, every format equal."""
    state = tmp_path / "state.db"
    with Ledger.open(state) as ledger:
        ledger.create_run(RUN)
        ledger.add_targets(ROWS)
        rows = {row.key: row for row in ROWS}
        ledger.write([(rows[step.key], step) for step in TRANSITIONS])
        run, targets, steps = (
            ledger.get_run(RUN_ID),
            ledger.targets(RUN_ID),
            ledger.transitions(RUN_ID),
        )
    for fmt in FILE_NAMES:
        from_ledger = render(fmt, run, targets, steps, state=state)
        assert from_ledger == render(fmt, RUN, ROWS, TRANSITIONS, state=state), fmt


def test_md_and_html_list_every_target_not_rekeyed_by_reason_with_names_and_what_next() -> None:
    """Unverified and skipped targets without an error code are there too, with the hint
    for their reason; the run's stop reason and the resume command come first."""
    md = render("md", RUN, ROWS, TRANSITIONS, state=Path("/srv/ledger.db"))
    assert "Stopped: the failure budget ran out" in md
    assert f"- `ontap-rekey resume {RUN_ID} --state /srv/ledger.db`: continues the 1 target" in md
    assert "| skipped: unreachable | - | 2 | south-03/-, south-03/svm_x | The cluster did not" in md
    assert "| unverified | - | 1 | east-01/svm_d |" in md
    assert "| 65537547 | fatal | 1 | east-01/svm_e |" in md  # the errors table names them
    html = render("html", RUN, ROWS, TRANSITIONS)
    assert '<td>skipped: unreachable</td><td>-</td><td class="n">2</td>' in html
    assert "<td>south-03/-, south-03/svm_x</td>" in html
    assert f"<code>ontap-rekey resume {RUN_ID}</code>" in html  # no ledger given: no --state


def test_report_json_written_in_blocks_is_the_one_shot_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """report.json is encoded and scrubbed a block of lines at a time (never held whole):
    with tiny blocks it is still exactly the indented document `report --format json`
    renders, and no registered secret reaches it."""
    from orchestrator.observe import reports

    monkeypatch.setattr(reports, "_JSON_BLOCK", 7)  # a block boundary on nearly every line
    register_secret(SECRET)
    written = write_all(tmp_path / "r", RUN, ROWS, TRANSITIONS)
    text = written["json"].read_text(encoding="utf-8")
    expected = json.dumps(build_report(RUN, ROWS, TRANSITIONS), indent=2, ensure_ascii=False)
    assert text == expected + "\n"
    assert SECRET not in text
    assert render("json", RUN, ROWS, TRANSITIONS) == text
