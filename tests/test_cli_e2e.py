"""The command line end to end: real sockets, the simulator on 127.0.0.1, the ledger on disk."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.ledger.store import Ledger
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator

pytestmark = pytest.mark.slow

FAST_JOBS = {"job_duration": {"min_s": 0.01, "max_s": 0.03}}
ANSI = re.compile(r"\x1b\[")


def _scenario(*faults: dict[str, Any]) -> Scenario:
    return Scenario.model_validate({"options": FAST_JOBS, "faults": list(faults)})


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)


def _serve(
    tmp_path: Path, scenario: Scenario, clusters: int = 3, svms: int = 4, explicit: bool = False
) -> Iterator[tuple[Simulation, Path]]:
    spec = FleetSpec.generate(clusters, svms)
    with running_simulator(spec, scenario, seed=3) as sim:
        inventory = write_inventory(
            tmp_path / "inv.yaml",
            spec,
            sim.urls,
            ca_bundle=None,
            svms="explicit" if explicit else "all",
        )
        yield sim, inventory


@pytest.fixture
def clean(tmp_path: Path) -> Iterator[tuple[Simulation, Path]]:
    yield from _serve(tmp_path, _scenario())


def _args(inventory: Path, *extra: str) -> list[str]:
    return [str(inventory), "--state", "state.db", "--report-dir", "reports", *extra]


def _rekeys(sim: Simulation) -> dict[str, int]:
    return {k: len(v["rekeys"]) for k, v in sim.fleet.stats()["svms"].items()}


def test_run_rekeys_everything_once_and_writes_every_report(
    clean: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sim, inventory = clean
    assert main(["run", *_args(inventory, "--yes")]) == 0
    assert set(_rekeys(sim).values()) == {1}
    names = {p.name for p in Path("reports").iterdir()}
    assert names == {"report.json", "report.md", "report.html", "junit.xml", "failed.txt"}
    report = json.loads(Path("reports/report.json").read_text())
    assert report["totals"]["rekeyed"] == 12
    out = capsys.readouterr()
    assert not ANSI.search(out.out + out.err)


def test_plan_is_read_only_and_ready(clean: tuple[Simulation, Path]) -> None:
    sim, inventory = clean
    assert main(["plan", *_args(inventory)]) == 0
    methods = {r["method"] for c in sim.fleet.stats()["clusters"].values() for r in c["requests"]}
    assert methods <= {"GET"}
    assert set(_rekeys(sim).values()) == {0}


def test_plan_names_every_not_ready_cause(tmp_path: Path) -> None:
    faults = [
        {"kind": "version", "cluster": "c001", "version": "9.11.1"},
        {"kind": "no_aws_kms", "cluster": "c002", "svm": "svm01"},
        {"kind": "amazon_unreachable", "cluster": "c002", "svm": "svm02"},
        {"kind": "ekmip_unreachable", "cluster": "c002", "svm": "svm03"},
        # the key store's state exists from ONTAP 9.16.1
        {"kind": "version", "cluster": "c00[34]", "version": "9.16.1"},
        {"kind": "keystore_state", "cluster": "c003", "svm": "svm01", "state": "initializing"},
        {"kind": "keystore_state", "cluster": "c003", "svm": "svm02", "state": "switching"},
        {"kind": "keystore_state", "cluster": "c003", "svm": "svm03", "state": "disabling"},
        {"kind": "keystore_state", "cluster": "c003", "svm": "svm04", "state": "mixed"},
        {"kind": "keystore_state", "cluster": "c004", "svm": "svm01", "state": "blocked"},
        {"kind": "wrong_password", "cluster": "c005", "password": "other"},
        {"kind": "unreachable", "cluster": "c006"},
    ]
    for sim, inventory in _serve(tmp_path, _scenario(*faults), clusters=6, explicit=True):
        assert main(["plan", *_args(inventory)]) == 5
        stats = sim.fleet.stats()["clusters"]
    report = json.loads(Path("reports/report.json").read_text())
    reasons = {t["target"]: t.get("reason") for t in report["targets"]}
    assert reasons["c001/svm01"] == "unsupported_version"
    assert reasons["c002/svm01"] == "not_configured"
    assert reasons["c002/svm02"] == reasons["c002/svm03"] == "kms_unreachable"
    assert [reasons[f"c003/svm0{i}"] for i in range(1, 5)] == [
        "keystore_initializing",
        "keystore_switching",
        "keystore_disabling",
        "keystore_mixed",
    ]
    assert reasons["c004/svm01"] == "keystore_blocked"
    assert reasons["c004/svm02"] is None
    assert reasons["c005/svm01"] == "auth_failed"
    assert reasons["c006/svm01"] == "unreachable"
    assert stats["c005"]["failed_logins"] == 1
    assert all(r["method"] == "GET" for c in stats.values() for r in c["requests"])


def test_emergency_touches_only_selected_targets_and_records_the_reason(
    clean: tuple[Simulation, Path],
) -> None:
    sim, inventory = clean
    args = _args(
        inventory,
        "--yes",
        "--emergency",
        "--reason",
        "INC-4711 key exposure",
        "--svm",
        "svm0[12]",
        "--cluster",
        "c002",
        "--log-file",
        "run.jsonl",
    )
    assert main(["run", *args]) == 0
    lines = [json.loads(line) for line in Path("run.jsonl").read_text().splitlines()]
    assert lines
    assert all(line.get("reason") == "INC-4711 key exposure" for line in lines)
    assert {k for k, n in _rekeys(sim).items() if n} == {"c002/svm01", "c002/svm02"}
    with Ledger.open(Path("state.db")) as ledger:
        (run,) = ledger.list_runs()
    assert (run.mode.value, run.reason) == ("emergency", "INC-4711 key exposure")
    assert json.loads(Path("reports/report.json").read_text())["run"]["reason"] == run.reason


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--emergency", "--svm", "svm01"], "--emergency needs --reason"),
        (["--emergency", "--reason", "x"], "pass --all"),
        (["--waves", "0"], "--waves"),
        ([], "--yes is required"),
    ],
)
def test_run_usage_errors_exit_2_before_contacting_anything(
    clean: tuple[Simulation, Path],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    sim, inventory = clean
    argv = ["run", *_args(inventory, *extra)]
    if extra:
        argv.append("--yes")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert all(not c["requests"] for c in sim.fleet.stats()["clusters"].values())


def test_permanent_failure_exits_3_and_failed_txt_reruns_it(tmp_path: Path) -> None:
    scenario = _scenario({"kind": "keys_in_admin_svm", "cluster": "c002", "svm": "svm03"})
    for sim, inventory in _serve(tmp_path, scenario):
        assert (
            main(["run", *_args(inventory, "--yes", "--waves", "100%", "--max-fail-percent", "50")])
            == 3
        )
        failed = Path("reports/failed.txt").read_text().split()
        assert "c002/svm03" in failed
        rerun = [
            str(inventory),
            "--state",
            "state.db",
            "--report-dir",
            "again",
            "--yes",
            "--targets",
            "@reports/failed.txt",
        ]
        assert main(["run", *rerun]) == 3
        report = json.loads(Path("again/report.json").read_text())
        assert [t["target"] for t in report["targets"]] == ["c002/svm03"]
        assert _rekeys(sim)["c002/svm03"] == 0


def test_canary_failure_exits_4(tmp_path: Path) -> None:
    scenario = _scenario({"kind": "keys_in_admin_svm", "cluster": "c001", "svm": "svm01"})
    for sim, inventory in _serve(tmp_path, scenario):
        assert main(["run", *_args(inventory, "--yes")]) == 4
        assert sum(_rekeys(sim).values()) == 0


def test_resume_of_a_finished_run_is_refused(clean: tuple[Simulation, Path]) -> None:
    _, inventory = clean
    assert main(["run", *_args(inventory, "--yes")]) == 0
    with Ledger.open(Path("state.db")) as ledger:
        (run,) = ledger.list_runs()
    assert main(["resume", run.run_id, "--state", "state.db"]) == 2


def test_internal_error_exits_1_with_a_short_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("orchestrator.commands.run.load_inventory", boom)
    assert main(["run", str(tmp_path / "x.yaml"), "--yes"]) == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: simulated bug" in err
