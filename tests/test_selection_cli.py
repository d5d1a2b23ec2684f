"""No false green on selection, and exclusions, end to end: every command that selects,
the simulator on 127.0.0.1, the ledger on disk (issue 13, points 1 and "exclusions")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.ledger.store import Ledger
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.server import Simulation, running_simulator
from tests.simfleet import FAST_SOCKET_JOBS

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Simulation, Path]]:
    """3 clusters (c001..c003) x 4 SVMs (svm01..svm04), `svms: all`, on loopback."""
    spec = FleetSpec.generate(3, 4)
    with running_simulator(spec, FAST_SOCKET_JOBS, seed=3) as sim:
        yield sim, write_inventory(tmp_path / "inv.yaml", spec, sim.urls, ca_bundle=None)


def _requests(sim: Simulation) -> list[dict[str, Any]]:
    return [r for c in sim.fleet.stats()["clusters"].values() for r in c["requests"]]


def _posts(sim: Simulation) -> int:
    return sum(r["count"] for r in _requests(sim) if r["method"] != "GET")


def _rekeyed(sim: Simulation) -> set[str]:
    return {k for k, v in sim.fleet.stats()["svms"].items() if v["rekeys"]}


def _runs() -> int:
    if not Path("state.db").exists():
        return 0
    with Ledger.open(Path("state.db")) as ledger:
        return len(ledger.list_runs())


def _argv(command: str, inventory: Path, *extra: str) -> list[str]:
    if command == "validate":
        return ["validate", str(inventory), *extra]
    if command == "history":
        return ["history", str(inventory), "--state", "state.db", *extra]
    head = [command, str(inventory), "--state", "state.db", "--report-dir", "reports"]
    if command == "emergency":
        head = ["run", *head[1:], "--emergency", "--reason", "INC-1"]
    return [*head, *(["--yes"] if head[0] == "run" else []), *extra]


SELECTING = ["validate", "plan", "run", "emergency", "history"]


@pytest.mark.parametrize("command", SELECTING)
@pytest.mark.parametrize(
    ("selectors", "message"),
    [
        (["--cluster", "c01*"], "--cluster 'c01*' matches no cluster of the inventory"),
        (["--tag", "prod"], "--tag 'prod' matches no cluster of the inventory"),
        (
            ["--cluster", "c00*", "--exclude-cluster", "c9*"],
            "--exclude-cluster 'c9*' matches no cluster",
        ),
        (["--targets", "@unknown.txt"], "c009/svm01 names cluster 'c009', which the inventory"),
        (["--targets", "@empty.txt"], "the selection matches no target of the inventory"),
        (
            ["--cluster", "c001", "--exclude-cluster", "c00*"],
            "the selection matches no target of the inventory: --cluster c001",
        ),
    ],
)
def test_a_selection_that_matches_nothing_offline_is_exit_2_and_contacts_nothing(
    fleet: tuple[Simulation, Path],
    capsys: pytest.CaptureFixture[str],
    command: str,
    selectors: list[str],
    message: str,
) -> None:
    sim, inventory = fleet
    Path("unknown.txt").write_text("c001/svm01\nc009/svm01\n")
    Path("empty.txt").write_text("# ontap-rekey run x: 0 targets not rekeyed\n")
    if command == "history":
        Ledger.open(Path("state.db")).close()
    assert main(_argv(command, inventory, *selectors)) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("error: ")
    assert message in err
    assert _requests(sim) == []  # nothing was contacted
    assert _runs() == 0


@pytest.mark.parametrize("command", ["plan", "run", "emergency"])
@pytest.mark.parametrize(
    ("selectors", "message"),
    [
        (["--svm", "smv01"], "the selection matches no target on the clusters: --svm smv01"),
        (
            ["--svm", "svm01", "--svm", "smv02"],
            "--svm 'smv02' matches no SVM found on the selected clusters",
        ),
        (
            ["--targets", "@typo.txt"],
            "--targets @typo.txt: c001/svm9 is not a target on cluster c001",
        ),
    ],
)
def test_a_selection_that_discovery_finds_empty_is_exit_2_and_posts_nothing(
    fleet: tuple[Simulation, Path],
    capsys: pytest.CaptureFixture[str],
    command: str,
    selectors: list[str],
    message: str,
) -> None:
    """`svms: all`: SVM names are known only after discovery; a typo must still not be a
    green run of nothing (or of less than asked for)."""
    sim, inventory = fleet
    Path("typo.txt").write_text("c001/svm01\nc001/svm9\n")
    assert main(_argv(command, inventory, *selectors)) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: {message}"]
    assert _requests(sim)  # discovery asked the clusters ...
    assert _posts(sim) == 0  # ... and nothing was rekeyed
    assert _runs() == 0


def test_exclusions_leave_targets_out_of_a_run(fleet: tuple[Simulation, Path]) -> None:
    sim, inventory = fleet
    Path("skip.txt").write_text("# known bad\n!c001/svm02\n")
    extra = ["--exclude-cluster", "c003", "--exclude-svm", "svm04", "--targets", "@skip.txt"]
    assert main(_argv("run", inventory, "--waves", "100%", *extra)) == 0
    assert _rekeyed(sim) == {
        "c001/svm01",
        "c001/svm03",
        "c002/svm01",
        "c002/svm02",
        "c002/svm03",
    }
    report = json.loads(Path("reports/report.json").read_text())
    assert report["totals"]["rekeyed"] == 5
    selection = report["run"]["selection"]  # the audit trail says what was left out
    assert (selection["exclude_cluster"], selection["exclude_svm"]) == (["c003"], ["svm04"])
    assert selection["exclude_targets"] == ["c001/svm02"]


def test_a_whole_cluster_line_selects_every_target_of_the_cluster(
    fleet: tuple[Simulation, Path],
) -> None:
    """`c002/*` (what failed.txt writes for an undiscovered `svms: all` cluster)."""
    sim, inventory = fleet
    Path("again.txt").write_text("c002/*\n!c002/svm01\n")
    assert main(_argv("run", inventory, "--waves", "100%", "--targets", "@again.txt")) == 0
    assert _rekeyed(sim) == {"c002/svm02", "c002/svm03", "c002/svm04"}


def test_a_plan_records_its_selection_like_a_run(fleet: tuple[Simulation, Path]) -> None:
    """One record builder: plan's run record keeps the selectors as given (issue 14)."""
    _sim, inventory = fleet
    assert main(_argv("plan", inventory, "--cluster", "c001", "--exclude-svm", "svm02")) == 0
    with Ledger.open(Path("state.db")) as ledger:
        (record,) = ledger.list_runs()
    assert record.selection["cluster"] == ["c001"]
    assert record.selection["exclude_svm"] == ["svm02"]
