"""Cluster identity end to end on loopback: a uuid that differs from the inventory's
`uuid:` or from the one the ledger recorded is `skipped: identity_mismatch` with a loud
warning and nothing POSTed; a different name is a warning only (issue 13, "identity")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.ledger.store import Ledger
from orchestrator.observe.redaction import clear_secrets
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, inventory_document
from orchestrator.simulator.server import Simulation, running_simulator
from tests.simfleet import FAST_SOCKET_JOBS

pytestmark = pytest.mark.slow

WRONG_UUID = "00000000-0000-4000-8000-000000000bad"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_secrets()  # a short secret another test registered would redact these names
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[tuple[Simulation, dict[str, Any]]]:
    """2 clusters x 2 SVMs on loopback and the inventory document for them."""
    spec = FleetSpec.generate(2, 2)
    with running_simulator(spec, FAST_SOCKET_JOBS, seed=3) as sim:
        yield sim, inventory_document(spec, sim.urls, ca_bundle=None)


def _write(document: dict[str, Any]) -> Path:
    path = Path("inv.yaml")
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _run(inventory: Path, report: str) -> int:
    args = ["--state", "s.db", "--report-dir", report, "--yes", "--waves", "100%"]
    return main(["run", str(inventory), *args, "--log-file", "run.jsonl"])


def _rekeys(sim: Simulation) -> dict[str, int]:
    return {k: len(v["rekeys"]) for k, v in sim.fleet.stats()["svms"].items()}


def _posts(sim: Simulation, cluster: str) -> int:
    requests = sim.fleet.stats()["clusters"][cluster]["requests"]
    return sum(r["count"] for r in requests if r["method"] == "POST")


def _events(name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in Path("run.jsonl").read_text().splitlines()]
    return [line for line in lines if line["event"] == name]


def _outcomes(report: str) -> dict[str, str]:
    doc = json.loads(Path(report, "report.json").read_text())
    return {t["target"]: f"{t['outcome']}:{t['reason']}" for t in doc["targets"]}


def test_a_uuid_other_than_the_inventory_pin_is_skipped_and_never_posted(
    fleet: tuple[Simulation, dict[str, Any]],
) -> None:
    sim, document = fleet
    document["clusters"][1]["uuid"] = WRONG_UUID
    assert _run(_write(document), "r1") == 3
    assert _outcomes("r1") == {
        "c001/svm01": "rekeyed:None",
        "c001/svm02": "rekeyed:None",
        "c002/*": "skipped:identity_mismatch",
    }
    assert _posts(sim, "c002") == 0
    assert _rekeys(sim)["c002/svm01"] == 0
    (warning,) = _events("cluster.identity_mismatch")
    assert warning["level"] == "warning"
    assert (warning["cluster"], warning["expected_uuid"], warning["pinned_by"]) == (
        "c002",
        WRONG_UUID,
        "inventory",
    )
    assert warning["reported_uuid"] == sim.fleet.by_name["c002"].uuid


def test_the_right_pinned_uuid_rekeys(fleet: tuple[Simulation, dict[str, Any]]) -> None:
    sim, document = fleet
    document["clusters"][1]["uuid"] = sim.fleet.by_name["c002"].uuid.upper()
    assert _run(_write(document), "r1") == 0
    assert set(_rekeys(sim).values()) == {1}
    assert _events("cluster.identity_mismatch") == []


def test_an_entry_that_now_leads_to_another_cluster_is_skipped(
    fleet: tuple[Simulation, dict[str, Any]],
) -> None:
    """The ledger remembers each entry's uuid: swapped addresses rekey nothing."""
    sim, document = fleet
    assert _run(_write(document), "r1") == 0
    with Ledger.open(Path("s.db")) as ledger:
        assert ledger.recorded_cluster_uuids() == {
            name: sim.fleet.by_name[name].uuid for name in ("c001", "c002")
        }
    first, second = document["clusters"]
    first["host"], second["host"] = second["host"], first["host"]
    assert _run(_write(document), "r2") == 3
    assert set(_outcomes("r2").values()) == {"skipped:identity_mismatch"}
    assert set(_rekeys(sim).values()) == {1}  # nothing rekeyed a second time
    assert {e["pinned_by"] for e in _events("cluster.identity_mismatch")} == {"ledger"}
    doc = json.loads(Path("r2/report.json").read_text())
    message = doc["targets"][0]["error"]["message"]
    assert "earlier runs recorded" in message
    assert "set uuid: " in message
    with Ledger.open(Path("s.db")) as ledger:  # a stranger's uuid is never remembered
        assert ledger.recorded_cluster_uuids()["c001"] == sim.fleet.by_name["c001"].uuid


def test_plan_calls_a_mismatched_cluster_not_ready(
    fleet: tuple[Simulation, dict[str, Any]],
) -> None:
    _, document = fleet
    document["clusters"][0]["uuid"] = WRONG_UUID
    plan = ["plan", str(_write(document)), "--state", "s.db", "--report-dir", "p"]
    assert main(plan) == 5
    assert _outcomes("p")["c001/*"] == "not_ready:identity_mismatch"


def test_a_name_that_differs_is_a_warning_only(
    fleet: tuple[Simulation, dict[str, Any]],
) -> None:
    sim, document = fleet
    document["clusters"][0]["name"] = "c001.mgmt.example.com"
    assert _run(_write(document), "r1") == 0
    assert set(_rekeys(sim).values()) == {1}
    (warning,) = _events("cluster.name_mismatch")
    assert (warning["level"], warning["cluster"], warning["reported_name"]) == (
        "warning",
        "c001.mgmt.example.com",
        "c001",
    )
