"""Issue 15's acceptance: a fleet mixing AWS KMS, Azure Key Vault and Google Cloud KMS over
ONTAP 9.12.1 to 9.17.1, rotated through the command line over loopback sockets with
`run --rekey external` and then `run --rekey internal`, checked against the simulator's
ground truth; the chaos invariants on the same fleet; and the per-provider skips
(`not_configured` codes, a rotation the version or the provider lacks)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.cli import main
from orchestrator.config.loader import load_inventory
from orchestrator.core.providers import Operation
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.store import Ledger
from orchestrator.observe.reports import build_report
from orchestrator.simulator.fleet import FleetSpec, KeyManager
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator
from tests.test_chaos import CHAOS_OPTIONS, PER_CLUSTER, chaos_scenario, check_invariants

pytestmark = pytest.mark.slow

VERSIONS = ("9.12.1", "9.13.1", "9.14.1", "9.15.1", "9.16.1", "9.17.1")
CLOUDS: tuple[KeyManager, ...] = ("aws", "azure", "gcp")
COLLECTIONS = {"aws": "aws-kms", "azure": "azure-key-vaults", "gcp": "gcp-kms"}
FAST_JOBS = {"job_duration": {"min_s": 0.01, "max_s": 0.03}}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)


def _serve(spec: FleetSpec, *faults: dict[str, Any]) -> Iterator[tuple[Simulation, Path]]:
    scenario = Scenario.model_validate({"options": FAST_JOBS, "faults": list(faults)})
    with running_simulator(spec, scenario, seed=5) as sim:
        inventory = write_inventory(Path("inv.yaml"), spec, sim.urls, ca_bundle=None)
        yield sim, inventory


@pytest.fixture
def mixed() -> Iterator[tuple[Simulation, Path]]:
    """6 clusters (9.12.1 .. 9.17.1 round-robin) x 6 SVMs (aws, azure, gcp round-robin)."""
    yield from _serve(FleetSpec.generate(6, 6, versions=VERSIONS, key_managers=CLOUDS))


def _cli(inventory: Path, command: str, *extra: str) -> int:
    args = [command, str(inventory), "--state", "state.db", "--report-dir", command, *extra]
    return main(args)


def _rekey_posts(sim: Simulation) -> Counter[tuple[str, str]]:
    """Accepted rekey POSTs per (collection, endpoint), from the request log."""
    posts: Counter[tuple[str, str]] = Counter()
    for entry in sim.fleet.stats()["clusters"].values():
        for request in entry["requests"]:
            parts = request["path"].split("/")
            accepted = request["status"] in (200, 201, 202)
            if request["method"] == "POST" and parts[-1].startswith("rekey-") and accepted:
                posts[(parts[3], parts[-1])] += request["count"]
    return posts


def test_mixed_fleet_rekeys_each_svm_once_per_operation_with_its_own_body(
    mixed: tuple[Simulation, Path],
) -> None:
    """External then internal: one accepted rekey per SVM per operation, at the SVM's own
    collection; the simulator refuses a body of the wrong shape (key_id for AWS and
    Azure, key_name for GCP, none for internal), so every accepted record proves it."""
    sim, inventory = mixed
    before = {name: svm["key_id"] for name, svm in sim.fleet.stats()["svms"].items()}
    assert Counter(svm["provider"] for svm in sim.fleet.stats()["svms"].values()) == {
        "aws": 12,
        "azure": 12,
        "gcp": 12,
    }
    assert _cli(inventory, "run", "--yes", "--rekey", "external") == 0
    assert _cli(inventory, "run", "--yes", "--rekey", "internal") == 0
    truth = sim.fleet.stats()["svms"]
    assert len(truth) == 36
    for name, svm in truth.items():
        operations = [(r["provider"], r["operation"]) for r in svm["rekeys"]]
        assert operations == [(svm["provider"], "external"), (svm["provider"], "internal")], name
        assert svm["rekeys"][0]["key_id"] == before[name]  # key_id: current: a re-version
        assert svm["key_id"] == before[name]  # an internal rekey keeps the cloud key id
    posts = _rekey_posts(sim)
    assert posts == {
        (COLLECTIONS[p], f"rekey-{op}"): 12 for p in CLOUDS for op in ("external", "internal")
    }
    report = json.loads(Path("run/report.json").read_text())
    assert report["run"]["operation"] == "internal"
    assert Counter(t["provider"] for t in report["targets"]) == {"aws": 12, "azure": 12, "gcp": 12}
    assert {t["operation"] for t in report["targets"]} == {"internal"}


def test_history_answers_the_last_external_and_the_last_internal_rotation(
    mixed: tuple[Simulation, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`history --older-than` judges the operation `--rekey` names (default external)."""
    _, inventory = mixed
    assert _cli(inventory, "run", "--yes", "--rekey", "external") == 0
    capsys.readouterr()
    history = ["history", str(inventory), "--state", "state.db", "--older-than", "90d"]
    assert main(history) == 0  # every SVM had its external rotation
    assert main([*history, "--rekey", "internal"]) == 5  # none had an internal one yet
    capsys.readouterr()
    assert main([*history, "--rekey", "internal", "--format", "json"]) == 5
    doc = json.loads(capsys.readouterr().out)
    assert doc["operation"] == "internal"
    assert {t["status"] for t in doc["targets"]} == {"never_rotated"}
    assert all(t["last_external"] is not None for t in doc["targets"])
    assert all(t["last_internal"] is None for t in doc["targets"])
    assert {t["provider"] for t in doc["targets"]} == set(CLOUDS)


def test_plan_names_the_providers_and_every_not_ready_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan's report gives each target its provider; the recap counts them per cluster;
    a target not ready says why (here: Barbican, which has no rekey-external)."""
    spec = FleetSpec.generate(1, 4, versions=("9.17.1",), key_managers=(*CLOUDS, "barbican"))
    for _, inventory in _serve(
        spec, {"kind": "keystore_state", "svm": "svm02", "state": "switching"}
    ):
        capsys.readouterr()
        assert _cli(inventory, "plan") == 5
        out = capsys.readouterr().out
        report = json.loads(Path("plan/report.json").read_text())
    verdicts = {t["svm"]: (t["provider"], t["outcome"], t["reason"]) for t in report["targets"]}
    assert verdicts == {
        "svm01": ("aws", "ready", None),
        "svm02": ("azure", "not_ready", "keystore_switching"),
        "svm03": ("gcp", "ready", None),
        "svm04": ("barbican", "not_ready", "unsupported_version"),
    }
    assert "aws 1, azure 1, barbican 1, gcp 1" in out
    barbican = next(t for t in report["targets"] if t["svm"] == "svm04")
    assert "no rekey-external" in barbican["facts"]["cause"]


@pytest.mark.parametrize(
    ("provider", "code"), [("azure", "65537120"), ("gcp", "65537721"), ("barbican", "65539817")]
)
def test_each_providers_not_configured_code_ends_skipped_not_configured(
    provider: KeyManager, code: str
) -> None:
    """The rekey-internal POST answers the provider's own "not configured" code."""
    spec = FleetSpec.generate(1, 2, versions=("9.17.1",), key_managers=(provider,))
    for sim, inventory in _serve(spec, {"kind": "not_configured", "svm": "svm01"}):
        assert _cli(inventory, "run", "--yes", "--rekey", "internal", "--waves", "100%") == 3
        truth = sim.fleet.stats()["svms"]
    report = json.loads(Path("run/report.json").read_text())
    results = {t["svm"]: (t["outcome"], t["reason"], (t["error"] or {}).get("code"))
               for t in report["targets"]}  # fmt: skip
    assert results == {
        "svm01": ("skipped", "not_configured", code),
        "svm02": ("rekeyed", None, None),
    }
    assert [len(truth[f"c001/{svm}"]["rekeys"]) for svm in ("svm01", "svm02")] == [0, 1]


def test_a_rotation_the_provider_or_version_lacks_is_skipped_unsupported_version() -> None:
    """Barbican rekey-external never exists, and rekey-internal before 9.17 neither: such
    targets end `skipped: unsupported_version` and nothing is sent to them."""
    spec = FleetSpec.generate(1, 2, versions=("9.17.1",), key_managers=("aws", "barbican"))
    for sim, inventory in _serve(spec):
        assert _cli(inventory, "run", "--yes", "--rekey", "external", "--waves", "100%") == 3
        truth = sim.fleet.stats()["svms"]
    report = json.loads(Path("run/report.json").read_text())
    results = {t["svm"]: (t["provider"], t["outcome"], t["reason"]) for t in report["targets"]}
    assert results == {
        "svm01": ("aws", "rekeyed", None),
        "svm02": ("barbican", "skipped", "unsupported_version"),
    }
    assert truth["c001/svm02"]["rekeys"] == []


@pytest.mark.chaos
@pytest.mark.parametrize("operation", [Operation.EXTERNAL, Operation.INTERNAL])
def test_chaos_invariants_hold_on_the_mixed_fleet(operation: Operation, tmp_path: Path) -> None:
    """Every fault of the chaos suite (drops before and after the POST, 503, slow answers,
    key stores initializing, a permanent code, an unreachable and a locked-out cluster)
    on the mixed fleet: no double rekey, the per-cluster limit held, one outcome per
    target, report totals equal to the ground truth."""
    spec = FleetSpec.generate(6, 6, versions=VERSIONS, key_managers=CLOUDS)
    options = replace(CHAOS_OPTIONS, rekey=operation)
    with running_simulator(spec, chaos_scenario(), seed=11) as sim:
        path = write_inventory(tmp_path / "chaos.yaml", spec, sim.urls, ca_bundle=None)
        inventory = load_inventory(path, environ={PASSWORD_ENV: "netapp-sim"})
        with Ledger.open(tmp_path / "chaos.db") as ledger:
            request = RunRequest(inventory, Selection(), options)
            result = anyio.run(
                execute_run, request, Wiring(AsyncLedger(ledger), handle_signals=False)
            )
            assert result is not None
            rows = ledger.targets(result.run.run_id)
            transitions = ledger.transitions(result.run.run_id)
            report = build_report(result.run, rows, transitions)
        truth = sim.fleet.stats()
    uncertain = {f"{t.key.cluster}/{t.key.svm}" for t in transitions if t.state == "uncertain"}
    accepted, double = check_invariants(rows, report, truth, 6, uncertain)
    assert double == 0 and accepted > 0
    for entry in truth["clusters"].values():
        assert entry["peak_concurrent_rekeys"] <= PER_CLUSTER
    for name, svm in truth["svms"].items():
        assert {r["operation"] for r in svm["rekeys"]} <= {operation.value}, name
        assert {r["provider"] for r in svm["rekeys"]} <= {svm["provider"]}, name
    providers = Counter(r.provider for r in rows if r.provider is not None)
    assert set(providers) == set(CLOUDS)
