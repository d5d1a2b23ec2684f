"""TLS end to end: verification on by default, a CA bundle fixes it, `verify: false` is flagged.

A TLS simulator on loopback sockets (`running_simulator(..., tls=True)`, a private CA) and
the real command line (`orchestrator.cli.main`) for `plan` and `run`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.ontap.transport import HANDSHAKES
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.server import Simulation, running_simulator

SPEC = FleetSpec.generate(2, 3)
CLUSTERS = ("c001", "c002")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulation]:
    with running_simulator(SPEC, tls=True, seed=3) as simulation:
        yield simulation


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):  # the system trust store only
        monkeypatch.delenv(name, raising=False)


def _inventory(tmp_path: Path, sim: Simulation, tls: dict[str, Any] | None) -> Path:
    """The simulator's inventory, with `defaults.tls` replaced by `tls` (None: no tls key)."""
    path = tmp_path / "inventory.yaml"
    write_inventory(path, SPEC, sim.urls, ca_bundle=None)
    document = yaml.safe_load(path.read_text())
    document["defaults"].pop("tls", None)
    if tls is not None:
        document["defaults"]["tls"] = tls
    path.write_text(yaml.safe_dump(document))
    assert all(url.startswith("https://") for url in sim.urls.values())
    return path


def _command(tmp_path: Path, command: str, inventory: Path) -> tuple[int, Path, Path]:
    reports, log = tmp_path / f"reports-{command}", tmp_path / f"{command}.log"
    argv = [command, str(inventory), "--state", str(tmp_path / "state.db")]
    argv += ["--report-dir", str(reports), "--log-file", str(log), "--log-format", "json"]
    if command == "run":
        argv += ["--yes", "--waves", "100%"]
    return main(argv), reports, log


def _events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("command", ["plan", "run"])
def test_without_ca_bundle_verification_fails_clearly(
    command: str, sim: Simulation, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, reports, log = _command(tmp_path, command, _inventory(tmp_path, sim, None))
    out, err = capsys.readouterr()
    assert code == (5 if command == "plan" else 3)
    failures = [e for e in _events(log) if e["event"] == "discovery.failed"]
    assert sorted(e["cluster"] for e in failures) == list(CLUSTERS)
    for event in failures:
        assert event["message"].startswith(f"{event['cluster']}: ")
        assert "CERTIFICATE_VERIFY_FAILED" in event["message"]
        assert "tls: {ca_bundle:" in event["message"]
    assert "ca_bundle" in out + err  # the recap's hint
    report = json.loads((reports / "report.json").read_text())
    expected = ("not_ready", "tls_failed") if command == "plan" else ("skipped", "tls_failed")
    assert {t["cluster"] for t in report["targets"]} == set(CLUSTERS)
    for target in report["targets"]:
        assert (target["outcome"], target["reason"]) == expected
        assert target["cluster"] in target["error"]["message"]
        assert "ca_bundle" in target["error"]["hint"]
    assert report["tls_verify_disabled"] == []
    assert sim.fleet.stats()["svms"] == {} or all(
        not s["rekeys"] for s in sim.fleet.stats()["svms"].values()
    )


def test_with_the_ca_bundle_the_run_succeeds(sim: Simulation, tmp_path: Path) -> None:
    assert sim.ca_pem_path is not None
    inventory = _inventory(tmp_path, sim, {"ca_bundle": str(sim.ca_pem_path)})
    before = {n: len(s["rekeys"]) for n, s in sim.fleet.stats()["svms"].items()}
    code, reports, log = _command(tmp_path, "run", inventory)
    assert code == 0
    report = json.loads((reports / "report.json").read_text())
    assert report["totals"]["rekeyed"] == 6
    assert report["tls_verify_disabled"] == []
    assert not [e for e in _events(log) if e["event"] == "cluster.tls_verify_disabled"]
    after = {n: len(s["rekeys"]) for n, s in sim.fleet.stats()["svms"].items()}
    assert sum(after.values()) - sum(before.values()) == 6


def test_verify_false_works_and_is_flagged(sim: Simulation, tmp_path: Path) -> None:
    code, reports, log = _command(tmp_path, "run", _inventory(tmp_path, sim, {"verify": False}))
    assert code == 0
    flagged = [e for e in _events(log) if e["event"] == "cluster.tls_verify_disabled"]
    assert sorted(e["cluster"] for e in flagged) == list(CLUSTERS)
    assert all(e["level"] == "warning" for e in flagged)
    report = json.loads((reports / "report.json").read_text())
    assert report["totals"]["rekeyed"] == 6
    assert sorted(report["tls_verify_disabled"]) == list(CLUSTERS)
    assert "TLS verification disabled" in (reports / "report.md").read_text()


def test_a_plan_records_the_tls_flag_like_a_run(sim: Simulation, tmp_path: Path) -> None:
    """One record builder: plan's record names the `verify: false` clusters too (issue 14)."""
    code, reports, log = _command(tmp_path, "plan", _inventory(tmp_path, sim, {"verify": False}))
    assert code == 0
    flagged = [e for e in _events(log) if e["event"] == "cluster.tls_verify_disabled"]
    assert sorted(e["cluster"] for e in flagged) == list(CLUSTERS)
    report = json.loads((reports / "report.json").read_text())
    assert sorted(report["tls_verify_disabled"]) == list(CLUSTERS)


def test_a_run_resumes_tls_sessions_per_cluster(sim: Simulation, tmp_path: Path) -> None:
    """After a cluster's first connection, its next connections resume its TLS session
    (ontap/transport.py): a run over TLS counts resumed handshakes, and still succeeds."""
    assert sim.ca_pem_path is not None
    inventory = _inventory(tmp_path, sim, {"ca_bundle": str(sim.ca_pem_path)})
    before = HANDSHAKES.copy()
    code, reports, _ = _command(tmp_path, "run", inventory)
    assert code == 0
    assert json.loads((reports / "report.json").read_text())["totals"]["rekeyed"] == 6
    full = HANDSHAKES["full"] - before["full"]
    resumed = HANDSHAKES["resumed"] - before["resumed"]
    assert full >= len(CLUSTERS)  # at least each cluster's first connection
    assert resumed >= 1
