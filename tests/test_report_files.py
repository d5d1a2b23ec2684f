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
from dataclasses import dataclass
from pathlib import Path

import pytest

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
from orchestrator.simulator.server import running_simulator
from tests.cli_interrupt import interrupted_run

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


@dataclass(frozen=True)
class Scene:
    """A run's written report folder and `report RUN_ID --output` texts of the same moment."""

    state: Path
    run_id: str
    folder: Path  # what the run (or resume) wrote
    rendered: Path  # what `report RUN_ID --format X --output` wrote right after it
    duration_s: float | None  # the run's end minus its start in the ledger at that moment


SCENES = ("run", "interrupted", "resumed")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Scene]]:
    """A clean run; a run interrupted by SIGINT; its resume. One fleet, two ledgers."""
    tmp = tmp_path_factory.mktemp("report-files")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(PASSWORD_ENV, "netapp-sim")
        env.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
        env.chdir(tmp)
        spec = FleetSpec.generate(2, 6)
        with running_simulator(spec, Scenario.model_validate(SCENARIO), seed=5) as sim:
            inventory = write_inventory(tmp / "inv.yaml", spec, sim.urls, ca_bundle=None)
            inventory.write_text(inventory.read_text() + RETRY)
            yield _play(tmp, inventory)


def _play(tmp: Path, inventory: Path) -> dict[str, Scene]:
    clean, broken = tmp / "clean.db", tmp / "broken.db"
    args = [str(inventory), "--yes", "--report-dir", "run", "--state", str(clean)]
    assert main(["run", *args]) == 0
    found = {"run": _scene(clean, "run")}
    argv = [str(inventory), "--yes", "--state", str(broken), "--report-dir", "interrupted"]
    argv += ["--per-cluster", "1", "--waves", "100%", "--log-file", "run.jsonl"]
    code = interrupted_run(argv, broken, tmp / "run.out")
    assert code == 130, (tmp / "run.out").read_text()
    found["interrupted"] = _scene(broken, "interrupted")
    resume = ["resume", found["interrupted"].run_id, "--state", str(broken)]
    assert main([*resume, "--report-dir", "resumed"]) == 0
    found["resumed"] = _scene(broken, "resumed")
    return found


def _scene(state: Path, folder: str) -> Scene:
    with Ledger.open(state) as ledger:
        (run,) = ledger.list_runs()
    rendered = Path(f"{folder}-rendered")
    rendered.mkdir()
    for fmt in FORMATS:
        out = rendered / FILE_NAMES[fmt]  # type: ignore[index]
        command = ["report", run.run_id, "--state", str(state), "--format", fmt]
        assert main([*command, "--output", str(out)]) == 0
    duration = round(run.ended_at - run.started_at, 3) if run.ended_at is not None else None
    return Scene(state, run.run_id, Path(folder).resolve(), rendered.resolve(), duration)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("scene", SCENES)
def test_written_report_equals_report_command(
    scenes: dict[str, Scene], scene: str, fmt: str
) -> None:
    """report.json/md/html and junit.xml are what `report RUN_ID --format X` renders from
    the ledger at that moment, byte for byte: after a run, after the interrupt, after the
    resume."""
    played = scenes[scene]
    name = FILE_NAMES[fmt]  # type: ignore[index]
    written = (played.folder / name).read_bytes()
    assert written == (played.rendered / name).read_bytes()


@pytest.mark.parametrize("scene", SCENES)
def test_written_reports_carry_the_end_time_and_duration(
    scenes: dict[str, Scene], scene: str
) -> None:
    played = scenes[scene]
    assert played.duration_s is not None
    report = json.loads((played.folder / "report.json").read_text())["run"]
    assert report["ended_at"] is not None
    assert report["duration_s"] == played.duration_s
    for name in ("report.md", "report.html"):
        text = (played.folder / name).read_text()
        assert "Ended | -" not in text and "<td>Ended</td><td>-</td>" not in text, name
        assert "Duration | -" not in text and "<td>Duration</td><td>-</td>" not in text, name


def test_a_resumed_run_reports_the_resumes_end_not_the_interrupted_one(
    scenes: dict[str, Scene],
) -> None:
    first, second = (
        json.loads((scenes[name].folder / "report.json").read_text())["run"]
        for name in ("interrupted", "resumed")
    )
    assert first["status"] == "interrupted" and second["status"] == "finished"
    assert second["ended_at"] > first["ended_at"]
    assert second["duration_s"] > first["duration_s"]


def test_timeline_after_resume_puts_outcomes_at_their_time_inside_the_axis(
    scenes: dict[str, Scene],
) -> None:
    """After interrupt + resume, each outcome dot sits at the target's last outcome (not at
    the interrupt) and no segment leaves the time axis."""
    played = scenes["resumed"]
    html = (played.folder / "report.html").read_text()
    with Ledger.open(played.state) as ledger:
        run = ledger.get_run(played.run_id)
        transitions = transitions_by_target(ledger.transitions(played.run_id))
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
