"""`history` over a real rotation on loopback: every target the inventory names, clusters
never discovered included; JSON and node_exporter textfile output; the ledger read-only
(issue 13, points 3 and 11)."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator

pytestmark = pytest.mark.slow

FAST = Scenario.model_validate({"options": {"job_duration": {"min_s": 0.01, "max_s": 0.03}}})
SAMPLE = re.compile(r'^(ontap_rekey_[a-z_]+)(\{[a-z]+="[^"\\]*"(,[a-z]+="[^"\\]*")*\})? [0-9.e+]+$')


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def rotated(tmp_path: Path) -> Iterator[tuple[Simulation, Path]]:
    """3 clusters x 2 SVMs, `svms: all`; only c001 rotated, c002/c003 never discovered."""
    spec = FleetSpec.generate(3, 2)
    with running_simulator(spec, FAST, seed=3) as sim:
        inventory = write_inventory(tmp_path / "inv.yaml", spec, sim.urls, ca_bundle=None)
        run = ["run", str(inventory), "--state", "state.db", "--report-dir", "r", "--yes"]
        assert main([*run, "--cluster", "c001", "--waves", "100%"]) == 0
        yield sim, inventory


def _history(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["history", *args, "--state", "state.db"])
    out, err = capsys.readouterr()
    return code, out, err


def test_clusters_never_discovered_are_listed_and_overdue(
    rotated: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, inventory = rotated
    code, out, _ = _history(capsys, str(inventory), "--older-than", "90d")
    assert code == 5  # c002 and c003 were never rotated: an auditor must see them
    lines = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert set(lines) == {"c001/svm01", "c001/svm02", "c002/*", "c003/*"}
    assert lines["c002/*"].endswith("never_rotated (not discovered yet: run plan)")
    assert out.splitlines()[-1] == (
        "4 targets: 2 rotated within 90d, 0 older than 90d, 2 never rotated"
    )


def test_after_a_plan_the_discovered_svms_replace_the_placeholder(
    rotated: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, inventory = rotated
    plan = ["plan", str(inventory), "--state", "state.db", "--report-dir", "p"]
    assert main(plan) == 0
    capsys.readouterr()
    code, out, _ = _history(capsys, str(inventory), "--format", "json")
    doc = json.loads(out)
    statuses = {t["target"]: (t["status"], t["discovered"]) for t in doc["targets"]}
    assert code == 0
    assert statuses["c002/svm01"] == ("never_rotated", True)
    assert "c002/*" not in statuses
    assert doc["totals"] == {"targets": 6, "ok": 2, "overdue": 0, "never_rotated": 4}


def test_json_output_file_names_the_undiscovered_cluster(
    rotated: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, inventory = rotated
    code, out, _ = _history(capsys, str(inventory), "--format", "json", "--output", "h.json")
    assert (code, out) == (0, "")
    doc = json.loads(Path("h.json").read_text())
    (c003,) = [t for t in doc["targets"] if t["target"] == "c003/*"]
    assert c003 == {
        "target": "c003/*",
        "cluster": "c003",
        "svm": "*",
        "status": "never_rotated",
        "rotated_at": None,
        "age_s": None,
        "run_id": None,
        "key_id": None,
        "provider": None,
        "operation": None,
        "last_external": None,
        "last_internal": None,
        "discovered": False,
        "note": "not discovered yet: run plan",
    }


def test_prometheus_textfile_metrics_are_written_atomically(
    rotated: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _, inventory = rotated
    folder = tmp_path / "textfile"
    folder.mkdir()
    target = folder / "ontap_rekey.prom"
    target.write_text("old content\n")
    args = (str(inventory), "--older-than", "90d", "--format", "prometheus")
    code, out, _ = _history(capsys, *args, "--output", str(target))
    assert (code, out) == (5, "")
    assert sorted(p.name for p in folder.iterdir()) == ["ontap_rekey.prom"]  # no temp left
    assert target.stat().st_mode & 0o777 == 0o644  # node_exporter runs as another user
    text = target.read_text()
    lines = text.splitlines()
    samples = [line for line in lines if not line.startswith("#")]
    assert all(SAMPLE.match(line) for line in samples), samples
    for name in {SAMPLE.match(line).group(1) for line in samples}:  # type: ignore[union-attr]
        assert f"# HELP {name} " in text
        assert f"# TYPE {name} gauge" in lines
    stamps = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in samples
        if line.startswith("ontap_rekey_last_rotation_timestamp_seconds")
    }
    metric = "ontap_rekey_last_rotation_timestamp_seconds"
    external, internal = 'operation="external"', 'operation="internal"'
    assert stamps[f'{metric}{{cluster="c001",svm="svm01",{external}}}'] > 1.7e9
    assert stamps[f'{metric}{{cluster="c001",svm="svm01",{internal}}}'] == 0  # never
    assert stamps[f'{metric}{{cluster="c002",svm="*",{external}}}'] == 0
    assert f"ontap_rekey_overdue_targets{{{external}}} 2" in lines


@pytest.mark.parametrize("content", [b"", b"not a database at all, just text\n"])
def test_history_never_writes_into_a_file_that_is_not_a_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(content)
    assert main(["history", "--state", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert str(path) in err
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]  # no -wal, no -shm


def test_history_leaves_another_sqlite_database_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE inventory (host TEXT)")
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert main(["history", "--state", str(path)]) == 2
    assert "is not an ontap-rekey ledger" in capsys.readouterr().err
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_a_missing_ledger_is_a_message_not_a_new_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "--state", str(tmp_path / "none.db")]) == 2
    assert "no ledger at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_history_reads_a_read_only_ledger(
    rotated: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """An auditor's copy (mode 0444) is read as it is."""
    Path("state.db").chmod(0o444)
    code, out, _ = _history(capsys, "--older-than", "90d")
    assert code == 0
    assert (
        out.splitlines()[-1] == "2 targets: 2 rotated within 90d, 0 older than 90d, 0 never rotated"
    )


def test_an_svm_glob_that_matches_no_known_svm_is_exit_2(
    rotated: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """svms: all clusters: checked against the SVMs runs and plans found."""
    _, inventory = rotated
    code, out, err = _history(capsys, str(inventory), "--cluster", "c001", "--svm", "smv01")
    assert (code, out) == (2, "")
    assert err == (
        "error: the selection matches no target in the ledger: --cluster c001 --svm smv01\n"
    )
