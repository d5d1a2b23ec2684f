"""The recap table printed at the end of a run or plan, and by `report RUN_ID`."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from rich.console import Console

from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus, TargetRow
from orchestrator.observe import hints
from orchestrator.observe.recap import render_recap
from orchestrator.observe.reports import summary
from tests.synthetic_run import make_plan, make_rows, make_run

RUN = make_run()
ROWS, TRANSITIONS = make_rows(RUN)


def recap_text(width: int = 160, **console: object) -> str:
    out = io.StringIO()
    render_recap(RUN, ROWS, TRANSITIONS, Console(file=out, width=width, **console))  # type: ignore[arg-type]
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
        "providers",  # issue 15
        "rekeyed",
        "unverified",
        "failed",
        "exhausted",
        "skipped",
        "aborted",
        "retries",
        "duration",
    ]
    assert row_of(text, "east-01") == [
        "east-01", "none 5", "3", "1", "1", "0", "0", "0", "2", "15.8 s"
    ]  # fmt: skip
    # retries are attempts after the first: svm_hr was exhausted after 3 attempts, 2 retries
    assert row_of(text, "west-02") == [
        "west-02", "none 4", "1", "0", "0", "1", "1", "1", "2", "25.0 s"
    ]  # fmt: skip
    assert row_of(text, "south-03")[2:8] == ["0", "0", "0", "0", "2", "0"]
    assert row_of(text, "total")[2:9] == ["4", "1", "1", "1", "3", "1", "4"]


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
    assert row_of(text, "cluster") == ["cluster", "providers", "ready", "not_ready", "reasons"]
    assert row_of(text, "east-01") == ["east-01", "none 2", "2", "0", "-"]
    assert row_of(text, "west-02") == ["west-02", "none 1", "0", "1", "key_store_switching x1"]
    assert "status: finished, exit code 5" in text


def test_recap_off_a_terminal_has_no_ansi_escapes() -> None:
    """A pipe or a file gets the table without escape sequences."""
    assert "\x1b[" not in recap_text()
    # NO_COLOR removes colour (bold stays, as no-color.org allows)
    colour = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|4[0-9])m")
    assert not colour.search(recap_text(force_terminal=True, no_color=True))
    assert colour.search(recap_text(force_terminal=True))


def _rows_with(*specs: tuple[str, str, str | None]) -> list[TargetRow]:
    """Rows `cluster/svm`, outcome, reason: enough for the recap's groups and status."""
    return [
        TargetRow(RUN.run_id, TargetKey.parse(key), TargetState.DONE, outcome, reason, wave=1)
        for key, outcome, reason in specs
    ]


def _text(run: RunRecord, rows: list[TargetRow], width: int = 160, **where: str) -> str:
    out = io.StringIO()
    render_recap(run, rows, [], Console(file=out, width=width), **where)  # type: ignore[arg-type]
    return out.getvalue()


def test_recap_at_60_columns_keeps_every_cluster_name_whole() -> None:
    """A console too narrow for the table gets one line per cluster: no `eas…`."""
    text = recap_text(width=60)
    assert "…" not in text
    for name in ("east-01", "west-02", "south-03"):
        assert re.search(rf"^{name}: \d+ targets?: ", text, re.MULTILINE), text
    assert re.search(r"^total: 11 targets: rekeyed 4, .*retries 4", text, re.MULTILINE | re.DOTALL)
    assert "- failed 65537547 (1): east-01/svm_e" in text


@pytest.mark.parametrize(
    ("reason", "says"),
    [
        ("failure_budget", "the failure budget ran out: more than 10 %"),
        ("fail_fast", "--fail-fast: the first target that failed stopped the run"),
        ("deadline", "the --deadline (600 s) passed"),
        ("canary_failed", "the canary (east-01/svm_a) was not rekeyed"),
        ("interrupt", "interrupted (SIGINT/SIGTERM)"),
    ],
)
def test_status_says_why_the_run_stopped_and_the_exact_next_commands(
    reason: str, says: str
) -> None:
    status = RunStatus.INTERRUPTED if reason == "interrupt" else RunStatus.ABORTED
    run = replace(RUN, status=status, options={**RUN.options, "deadline_s": 600})
    rows = _rows_with(("east-01/svm_a", "failed", None), ("east-01/svm_b", "aborted", reason))
    text = _text(run, rows, state="my.db", report_dir="out/r1")
    code = 130 if reason == "interrupt" else 4
    assert f"status: {status.value}, exit code {code}: {says}" in text
    assert f"next: ontap-rekey resume {RUN.run_id} --state my.db\n" in text
    rerun = (
        "next: ontap-rekey run inventories/fleet.yaml --targets @out/r1/failed.txt --state my.db"
    )
    assert rerun in text


def test_a_finished_run_suggests_only_the_rerun_and_leaves_the_default_state_out() -> None:
    run = replace(RUN, status=RunStatus.FINISHED)
    text = _text(run, _rows_with(("a/s1", "rekeyed", None), ("a/s2", "failed", None)),
                 state="ontap-rekey.db", report_dir="ontap-rekey-reports/x")  # fmt: skip
    assert "status: finished, exit code 3\n" in text
    assert "resume" not in text
    assert (
        "next: ontap-rekey run inventories/fleet.yaml --targets @ontap-rekey-reports/x/failed.txt\n"
        in text
    )


def test_unverified_targets_are_listed_with_their_reason_beside_the_errors() -> None:
    rows = _rows_with(
        ("a/s1", "unverified", "read_back_failed"), ("a/s2", "unverified", "cannot_settle")
    )
    text = _text(replace(RUN, status=RunStatus.FINISHED), rows)
    assert row_of(text, "unverified: read_back_failed")[2] == "a/s1"
    assert row_of(text, "unverified: cannot_settle")[2] == "a/s2"


def test_each_outcome_reason_gets_its_own_hint_not_the_generic_one() -> None:
    """An old ONTAP, a cluster down at discovery, a 401, a cluster that died mid-run."""
    reasons = ["unsupported_version", "unreachable", "auth_failed", "circuit_open"]
    rows = [TargetRow(RUN.run_id, TargetKey(f"c{i}", "s"), TargetState.DONE, "skipped", r)
            for i, r in enumerate(reasons)]  # fmt: skip
    found = {g.reason: g.hint for g in summary.reason_groups(rows)}
    generic = hints.hint_for(None)
    assert set(found) == set(reasons)
    assert len(set(found.values())) == len(reasons)
    assert generic not in found.values()
    assert "upgrade" in found["unsupported_version"]
    assert "401" in found["auth_failed"]
    assert "mid-run" in found["circuit_open"]


def test_a_plan_suggests_run_with_its_own_selectors_never_the_whole_fleet() -> None:
    run, rows = make_plan()
    selected = replace(run, selection={"cluster": ["east-*"], "svm": [], "tag": ["prod"]})
    text = _text(selected, rows)
    assert "next: ontap-rekey run inventories/fleet.yaml --cluster 'east-*' --tag prod\n" in text
    assert "repeat the plan's selectors" in _text(replace(run, selection={}), rows)


def test_an_emergency_rerun_keeps_the_emergency_profile_and_its_reason() -> None:
    run = replace(RUN, mode=RunMode.EMERGENCY, reason="INC-1 key leak", status=RunStatus.FINISHED)
    text = _text(run, _rows_with(("a/s1", "failed", None)))
    rerun = "ontap-rekey run inventories/fleet.yaml --targets @failed.txt --emergency"
    assert f"next: {rerun} --reason 'INC-1 key leak'\n" in text
