"""`ontap-rekey report RUN_ID`: any past run rendered from a real SQLite ledger."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from orchestrator.cli import main
from orchestrator.core.exitcodes import ExitCode
from orchestrator.ledger.store import Ledger
from orchestrator.observe.reports import load_schema, render
from tests.synthetic_run import RUN_ID, make_rows, make_run

RUN = make_run()
ROWS, TRANSITIONS = make_rows(RUN)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A ledger holding the synthetic run, written through the Ledger API."""
    path = tmp_path / "ontap-rekey.db"
    with Ledger.open(path) as ledger:
        ledger.create_run(RUN)
        ledger.add_targets(ROWS)
        rows = {row.key: row for row in ROWS}
        ledger.write([(rows[step.key], step) for step in TRANSITIONS])
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["report", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_from_the_ledger_equals_the_report_of_the_rows(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--format json` reproduces exactly what the run's rows render to, and validates."""
    code, out, _ = run_cli(capsys, RUN_ID, "--state", str(state), "--format", "json")
    assert code == 0
    data = json.loads(out)
    jsonschema.validate(data, load_schema(), cls=jsonschema.Draft202012Validator)
    assert out == render("json", RUN, ROWS, TRANSITIONS)


@pytest.mark.parametrize(
    ("fmt", "marker"),
    [
        ("md", "| 11 | 4 | 1 | 1 | 1 | 3 | 1 | 4 |"),
        ("html", 'data-cluster="west-02"'),
        ("junit", "<testsuites"),
    ],
)
def test_each_format_prints_to_stdout(
    state: Path, capsys: pytest.CaptureFixture[str], fmt: str, marker: str
) -> None:
    """md, html and junit print the rendered report."""
    code, out, _ = run_cli(capsys, RUN_ID, "--state", str(state), "--format", fmt)
    assert code == 0
    assert marker in out


def test_output_writes_a_file(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--output writes the format to a file instead of stdout."""
    target = tmp_path / "junit.xml"
    code, out, err = run_cli(
        capsys, RUN_ID, "--state", str(state), "--format", "junit", "--output", str(target)
    )
    assert (code, out) == (0, "")
    assert "wrote" in err
    assert ET.parse(target).getroot().get("tests") == "11"


def test_without_format_prints_the_recap(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No --format: the recap table (not a terminal here, so plain and uncoloured)."""
    code, out, _ = run_cli(capsys, RUN_ID, "--state", str(state))
    assert code == 0
    assert "east-01" in out
    assert "Not rekeyed, by reason" in out
    assert "\x1b[" not in out


def test_unknown_run_is_a_state_error(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown run id exits 2 with one error line."""
    code, _, err = run_cli(capsys, "no-such-run", "--state", str(state))
    assert code == ExitCode.USAGE == 2
    assert "no-such-run" in err


def test_missing_ledger_is_a_state_error_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reading a report never creates a ledger file."""
    missing = tmp_path / "nope.db"
    code, _, err = run_cli(capsys, RUN_ID, "--state", str(missing))
    assert code == 2
    assert "no ledger" in err
    assert not missing.exists()
