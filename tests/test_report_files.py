"""Issue 13 point 4: the report files a run writes are `report RUN_ID --format X`, byte for
byte, with the end time and duration, after a run and after an interrupted run + resume.

The fleet is served on 127.0.0.1; the interrupted run is a real `ontap-rekey run`
subprocess that gets a SIGINT once rekeys are in flight (a SIGINT must never reach the
test process itself), the resume and the `report` commands run in-process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_interrupt import interrupted_run

from orchestrator.cli import main
from orchestrator.core.targets import TargetState
from orchestrator.ledger.records import RunStatus
from orchestrator.ledger.store import Ledger
from orchestrator.observe.reports import FILE_NAMES
from orchestrator.observe.reports.html import LABEL_W, PLOT_W
from orchestrator.observe.reports.timeline import transitions_by_target
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator

pytestmark = pytest.mark.slow

FORMATS = ("json", "md", "html", "junit")
SCENARIO = {
    "options": {"job_duration": {"min_s": 0.3, "max_s": 0.6}},
    "faults": [
        # a wait for a retry on both sides of the interrupt: waiting segments in the timeline
        {"kind": "keystore_initializing", "cluster": "c00[12]", "svm": "svm0[12]", "attempts": 1}
    ],
}
RETRY = "retry:\n  '65539436': {base_delay_s: 0.2, max_delay_s: 0.4}\n"


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Simulation, Path]]:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)
    spec = FleetSpec.generate(2, 6)
    with running_simulator(spec, Scenario.model_validate(SCENARIO), seed=5) as sim:
        inventory = write_inventory(tmp_path / "inv.yaml", spec, sim.urls, ca_bundle=None)
        inventory.write_text(inventory.read_text() + RETRY)
        yield sim, inventory


def _report(capsys: pytest.CaptureFixture[str], run_id: str, fmt: str) -> str:
    capsys.readouterr()
    assert main(["report", run_id, "--state", "state.db", "--format", fmt]) == 0
    return capsys.readouterr().out


def _assert_files_equal_report_command(
    capsys: pytest.CaptureFixture[str], run_id: str, folder: Path
) -> dict[str, object]:
    for fmt in FORMATS:
        written = (folder / FILE_NAMES[fmt]).read_text(encoding="utf-8")  # type: ignore[index]
        assert written == _report(capsys, run_id, fmt), f"{fmt} differs from report {run_id}"
    data: dict[str, object] = json.loads((folder / "report.json").read_text())
    return data


def _only_run_id() -> str:
    with Ledger.open(Path("state.db")) as ledger:
        (run,) = ledger.list_runs()
    return run.run_id


def _assert_has_end(folder: Path, run_id: str) -> None:
    with Ledger.open(Path("state.db")) as ledger:
        run = ledger.get_run(run_id)
    assert run.ended_at is not None
    report = json.loads((folder / "report.json").read_text())["run"]
    assert report["ended_at"] is not None
    assert report["duration_s"] == round(run.ended_at - run.started_at, 3)
    for name in ("report.md", "report.html"):
        text = (folder / name).read_text()
        assert "Ended | -" not in text and "<td>Ended</td><td>-</td>" not in text, name
        assert "Duration | -" not in text and "<td>Duration</td><td>-</td>" not in text, name


def test_written_reports_equal_report_command_after_a_run(
    fleet: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Every written format has the end time and equals `report RUN_ID --format X`."""
    _, inventory = fleet
    args = [str(inventory), "--state", "state.db", "--report-dir", "r1", "--yes"]
    assert main(["run", *args]) == 0
    run_id = _only_run_id()
    _assert_has_end(Path("r1"), run_id)
    _assert_files_equal_report_command(capsys, run_id, Path("r1"))


def _interrupted_run(inventory: Path, tmp_path: Path) -> int:
    """A `run` subprocess, SIGINT once two rekeys are in flight; returns its exit code."""
    argv = [str(inventory), "--yes", "--state", "state.db", "--report-dir", "r1"]
    argv += ["--per-cluster", "1", "--waves", "100%", "--log-file", "run.jsonl"]
    return interrupted_run(argv, Path("state.db"), tmp_path / "run.out")


def test_written_reports_equal_report_command_after_interrupt_and_resume(
    fleet: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Both the interrupted run's and the resume's files equal `report RUN_ID`; the resume's
    carry the resume's end, not the interrupted session's."""
    _, inventory = fleet
    assert _interrupted_run(inventory, tmp_path) == 130, (tmp_path / "run.out").read_text()
    run_id = _only_run_id()
    first = _assert_files_equal_report_command(capsys, run_id, Path("r1"))
    _assert_has_end(Path("r1"), run_id)
    assert main(["resume", run_id, "--state", "state.db", "--report-dir", "r2"]) == 0
    second = _assert_files_equal_report_command(capsys, run_id, Path("r2"))
    _assert_has_end(Path("r2"), run_id)
    assert second["run"]["ended_at"] > first["run"]["ended_at"]  # type: ignore[index]


def test_timeline_after_resume_puts_outcomes_at_their_time_inside_the_axis(
    fleet: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """After interrupt + resume, each outcome dot sits at the target's last outcome (not at
    the interrupt) and no segment leaves the time axis."""
    _, inventory = fleet
    assert _interrupted_run(inventory, tmp_path) == 130, (tmp_path / "run.out").read_text()
    run_id = _only_run_id()
    assert main(["resume", run_id, "--state", "state.db", "--report-dir", "r2"]) == 0
    html = Path("r2/report.html").read_text()
    with Ledger.open(Path("state.db")) as ledger:
        run = ledger.get_run(run_id)
        transitions = transitions_by_target(ledger.transitions(run_id))
    assert run.status is RunStatus.FINISHED and run.ended_at is not None
    dones = {k: [t.at for t in ts if t.state is TargetState.DONE] for k, ts in transitions.items()}
    reopened = [key for key, times in dones.items() if len(times) > 1]
    assert reopened, "the interrupt aborted no target: nothing was resumed"
    end = max(run.ended_at, *(t.at for ts in transitions.values() for t in ts))
    scale = PLOT_W / (end - run.started_at)
    for key in reopened:
        last_done = dones[key][-1]
        match = re.search(rf'cx="([\d.]+)"[^>]*><title>{re.escape(str(key))}: ', html)
        assert match is not None, key
        assert float(match.group(1)) == pytest.approx(
            LABEL_W + (last_done - run.started_at) * scale, abs=0.2
        )
    rects = re.findall(r'<rect class="[^"]*" x="([\d.-]+)" y="\d+" width="([\d.]+)"', html)
    assert rects
    for x, width in rects:
        assert float(x) >= LABEL_W - 0.1
        assert float(x) + float(width) <= LABEL_W + PLOT_W + 1.6  # an instant's sliver: 1.5
