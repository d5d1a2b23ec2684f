"""Guard rails an on-call engineer relies on, end to end: the simulator on 127.0.0.1, the CLI,
the ledger on disk (issue 13, points 2, 5, 6, 11; issue 14, waves)."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator

pytestmark = pytest.mark.slow

FAST_JOBS = {"job_duration": {"min_s": 0.01, "max_s": 0.03}}
ADMIN_SVM_KEYS = {"kind": "keys_in_admin_svm", "cluster": "c001", "svm": "svm01"}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)


def _serve(
    tmp_path: Path,
    *faults: dict[str, Any],
    clusters: int = 1,
    svms: int = 8,
    version: str = "9.16.1",  # the first ONTAP that shows a key store's `state`
) -> Iterator[tuple[Simulation, Path]]:
    scenario = Scenario.model_validate({"options": FAST_JOBS, "faults": list(faults)})
    spec = FleetSpec.generate(clusters, svms)
    spec = FleetSpec(clusters=[c.model_copy(update={"version": version}) for c in spec.clusters])
    with running_simulator(spec, scenario, seed=3) as sim:
        yield sim, write_inventory(tmp_path / "inv.yaml", spec, sim.urls, ca_bundle=None)


def _args(inventory: Path, *extra: str) -> list[str]:
    return [str(inventory), "--state", "state.db", "--report-dir", "reports", *extra]


def _report(folder: str = "reports") -> dict[str, Any]:
    return json.loads(Path(folder, "report.json").read_text())  # type: ignore[no-any-return]


def _requests(sim: Simulation) -> int:
    clusters = sim.fleet.stats()["clusters"].values()
    return sum(r["count"] for c in clusters for r in c["requests"])


def _rekeys(sim: Simulation) -> dict[str, int]:
    return {k: len(v["rekeys"]) for k, v in sim.fleet.stats()["svms"].items()}


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


# -- point 2: the emergency profile ------------------------------------------------------


def test_emergency_spends_no_failure_budget_and_attempts_every_target(tmp_path: Path) -> None:
    """One SVM with keys in the admin SVM no longer aborts the others of an emergency."""
    for sim, inventory in _serve(tmp_path, ADMIN_SVM_KEYS):
        argv = ["run", *_args(inventory, "--yes", "--emergency", "--reason", "INC-1")]
        assert main([*argv, "--svm", "svm*"]) == 3
        rekeys = _rekeys(sim)
    report = _report()
    assert report["totals"]["failed"] == 1
    assert report["totals"]["aborted"] == 0
    assert report["totals"]["rekeyed"] == 7
    assert report["run"]["status"] == "finished"
    assert rekeys["c001/svm01"] == 0
    assert all(n == 1 for name, n in rekeys.items() if name != "c001/svm01")


def test_explicit_max_fail_percent_gives_an_emergency_its_budget_back(tmp_path: Path) -> None:
    for _sim, inventory in _serve(tmp_path, ADMIN_SVM_KEYS):
        argv = ["run", *_args(inventory, "--yes", "--emergency", "--reason", "INC-1")]
        extra = ["--svm", "svm*", "--max-fail-percent", "10", "--per-cluster", "1"]
        assert main([*argv, *extra]) == 4
    report = _report()
    assert report["run"]["status"] == "aborted"
    assert report["totals"]["aborted"] == 3  # 1 failure of the first 5 finished > 10 %


def test_a_run_whose_targets_all_finished_is_finished_not_aborted(tmp_path: Path) -> None:
    """The budget tripped by the last target to finish aborts nothing: exit 3, not 4."""
    last = {"kind": "keys_in_admin_svm", "cluster": "c001", "svm": "svm05"}
    for _sim, inventory in _serve(tmp_path, last, svms=5):
        argv = ["run", *_args(inventory, "--yes", "--waves", "100%", "--per-cluster", "1")]
        assert main(argv) == 3
    report = _report()
    assert report["run"]["status"] == "finished"
    assert (report["totals"]["rekeyed"], report["totals"]["failed"]) == (4, 1)
    assert report["totals"]["aborted"] == 0


def test_run_help_documents_the_emergency_budget_and_declining(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "no failure budget unless --max-fail-percent is given" in text
    assert "circuit breaker stays on" in text
    assert "never 4" in text
    assert "Answering no at the prompt rekeys nothing, records nothing and exits 0" in text


# -- point 5: folders and the ledger, checked before the first request ----------------------


def _cli_as_owner(args: list[str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess that file permissions bind: as root, in a user namespace
    without capabilities over the host's files (root would write a mode-555 folder)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        if (
            unshare is None
            or subprocess.run([unshare, "--user", "true"], check=False).returncode != 0
        ):
            pytest.skip("root without user namespaces: permissions cannot bind")
        prefix = [unshare, "--user"]
    command = [*prefix, sys.executable, "-m", "orchestrator", *args]
    return subprocess.run(command, check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "ro"
    folder.mkdir()
    sqlite3.connect(folder / "existing.db").close()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--state", "ro/state.db"], "--state ro/state.db: cannot write in the folder ro"),
        (["--state", "ro/existing.db"], "--state ro/existing.db: cannot write in the folder ro"),
        (["--state", "s.db", "--report-dir", "ro/reports"], "--report-dir ro/reports"),
        (["--state", "s.db", "--report-dir", "inv.yaml/reports"], "inv.yaml is not a folder"),
    ],
)
def test_unwritable_state_or_report_folder_is_exit_2_before_any_request(
    tmp_path: Path, read_only: Path, extra: list[str], fragment: str
) -> None:
    for sim, inventory in _serve(tmp_path, svms=2):
        done = _cli_as_owner(["run", str(inventory), "--yes", *extra])
        requests = _requests(sim)
    assert done.returncode == 2, done.stderr
    assert _error_lines(done.stderr) == [_error_lines(done.stderr)[0]]
    assert fragment in done.stderr
    assert "Traceback" not in done.stderr
    assert requests == 0


def _ledger_with_runs(tmp_path: Path) -> str:
    """A real ledger of two runs on disk; returns the first run's id."""
    for _sim, inventory in _serve(tmp_path, svms=40):
        assert main(["run", *_args(inventory, "--yes")]) == 0
        assert main(["run", *_args(inventory, "--yes", "--report-dir", "again")]) == 0
    return str(_report()["run"]["run_id"])


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "not_sqlite":
        path.write_text("id,outcome\n1,rekeyed\n" * 100)
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:  # a page in the middle overwritten: the header and the schema still read fine
        page = 4096
        middle = (len(data) // page // 2) * page
        path.write_bytes(data[:middle] + b"\x5a" * page + data[middle + page :])


@pytest.mark.parametrize("how", ["not_sqlite", "truncated", "mid_file"])
def test_damaged_ledger_is_exit_2_with_one_line_for_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    run_id = _ledger_with_runs(tmp_path)
    state = tmp_path / "state.db"
    with sqlite3.connect(state) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file
    _damage(state, how)
    capsys.readouterr()
    commands = [
        ["run", "inv.yaml", "--yes"],
        ["plan", "inv.yaml"],
        ["resume", run_id],
        ["report", run_id],
        ["history", "inv.yaml"],
    ]
    for argv in commands:
        assert main([*argv, "--state", str(state)]) == 2, argv
        lines = _error_lines(capsys.readouterr().err)
        assert len(lines) == 1, (argv, lines)
        assert f"cannot open the ledger {state}" in lines[0]
        assert "restore state.db from a backup" in lines[0]


# -- point 6: readiness in discovery, the canary, the prompt ------------------------------

INITIALIZING = {"kind": "keystore_initializing", "cluster": "c001", "svm": "svm01", "attempts": 1}


def test_a_not_ready_target_never_leads_the_canary_or_a_wave(tmp_path: Path) -> None:
    for _sim, inventory in _serve(tmp_path, INITIALIZING, clusters=2, svms=3):
        assert main(["run", *_args(inventory, "--yes", "--waves", "1,2,100%")]) == 0
    waves = {t["target"]: t["wave"] for t in _report()["targets"]}
    assert waves["c001/svm01"] == 3  # would be the canary by name; it goes last
    assert sorted(waves.values()) == [1, 2, 2, 3, 3, 3]


def test_skip_not_ready_leaves_them_skipped_with_the_plans_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    switching = {"kind": "keystore_state", "cluster": "c001", "svm": "svm02", "state": "switching"}
    for sim, inventory in _serve(tmp_path, switching, clusters=2, svms=3):
        assert main(["plan", *_args(inventory, "--report-dir", "plan")]) == 5
        plan = {t["target"]: t["reason"] for t in _report("plan")["targets"]}
        capsys.readouterr()
        assert main(["run", *_args(inventory, "--yes", "--skip-not-ready")]) == 3
        rekeys = _rekeys(sim)
    summary = capsys.readouterr().err  # --yes: no question, the summary all the same
    assert "c001: 2 ready, 1 skipped: not_ready (keystore_switching: svm02)" in summary
    target = next(t for t in _report()["targets"] if t["target"] == "c001/svm02")
    assert (target["outcome"], target["reason"]) == ("skipped", "not_ready")
    assert plan["c001/svm02"] in target["error"]["message"]
    assert rekeys["c001/svm02"] == 0
    assert sum(rekeys.values()) == 5


class _Terminal(io.StringIO):
    """stdin as an administrator at a terminal types it."""

    def isatty(self) -> bool:
        return True


def test_the_prompt_shows_the_plan_summary_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    switching = {"kind": "keystore_state", "cluster": "c002", "svm": "svm03", "state": "switching"}
    for _sim, inventory in _serve(tmp_path, switching, clusters=2, svms=3):
        monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
        assert main(["run", *_args(inventory)]) in (0, 3)
    err = capsys.readouterr().err
    summary, _, after = err.partition("Rekey 6 targets on 2 clusters?")
    assert after, err
    assert "c001: 3 ready" in summary
    assert "c002: 2 ready, 1 not ready (keystore_switching: svm03)" in summary
    assert "waves: 1 + 1 + 4; estimated" in summary


# -- point 11: usage errors and declining ---------------------------------------------------


def test_declining_at_the_prompt_rekeys_nothing_records_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for sim, inventory in _serve(tmp_path, svms=2):
        monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
        assert main(["run", *_args(inventory)]) == 0
        rekeys = _rekeys(sim)
    err = capsys.readouterr().err
    assert "Rekey 2 targets on 1 cluster?" in err
    assert "nothing was rekeyed: declined at the prompt" in err
    assert set(rekeys.values()) == {0}
    assert not Path("reports").exists()
    with sqlite3.connect("state.db") as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (0,)


@pytest.mark.parametrize("command", ["run", "plan"])
@pytest.mark.parametrize("spec", ["1,200%", "1,,2", "0", "1/3"])
def test_bad_waves_is_one_usage_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, command: str
) -> None:
    for sim, inventory in _serve(tmp_path, svms=2):
        assert main([command, *_args(inventory, "--waves", spec)]) == 2
        assert _requests(sim) == 0
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1
    assert lines[0].startswith(f"error: --waves {spec!r}: ")
    assert lines[0].count("--waves") == 1


# -- issue 14: one wave grammar for validate, plan and run ----------------------------------


def _with_waves(inventory: Path, spec: str) -> Path:
    document = yaml.safe_load(inventory.read_text())
    document["defaults"]["waves"] = spec
    path = inventory.with_name("waves.yaml")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("spec", "accepted"),
    [("100%,1", False), ("12.5%", True), ("1,ten%", False), ("2,50%", True), ("1,1/3%", False)],
)
def test_validate_accepts_exactly_the_waves_run_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, accepted: bool
) -> None:
    for _sim, inventory in _serve(tmp_path, svms=3):
        path = _with_waves(inventory, spec)
        validated = main(["validate", str(path)])
        ran = main(["run", *_args(path, "--yes")])
    assert (validated, ran) == ((0, 0) if accepted else (2, 2))
    assert "internal error" not in capsys.readouterr().err
