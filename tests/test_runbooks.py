"""The runbooks, rehearsed word for word: every `ontap-rekey` command of a fenced block in
docs/runbook-*.md runs as a subprocess against a simulated fleet on 127.0.0.1, and each
ends the way its runbook says. The fix steps are the documented ONTAP REST calls."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchestrator.simulator.fleet import ClusterDef, FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parent.parent / "docs"
INVENTORY = Path("inventories/prod.yaml")  # the path both runbooks use
FENCE = re.compile(r"^\s*```\s*\n(.*?)^\s*```", re.MULTILINE | re.DOTALL)
RUN_ID = re.compile(r"^run id: (\S+)$", re.MULTILINE)
TIMEOUT_S = 180.0  # generous: only a hung command should ever reach it


def runbook_commands(name: str) -> list[list[str]]:
    """The `ontap-rekey` commands of the runbook's fenced blocks, in order, as argv."""
    commands = []
    for block in FENCE.findall((DOCS / name).read_text(encoding="utf-8")):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            if line.strip().startswith("ontap-rekey "):
                commands.append(shlex.split(line)[1:])
    return commands


@dataclass
class Done:
    argv: list[str]
    code: int
    out: str
    err: str

    @property
    def run_id(self) -> str:
        found = RUN_ID.findall(self.out)
        assert found, self
        return found[-1]


def ontap_rekey(argv: list[str], run_id: str | None = None, *, answer: str = "y") -> Done:
    """Run one runbook command as the administrator would: at a terminal (a pty on stdin
    that answers the prompt), `<run_id>` replaced by the run the runbook refers to."""
    argv = [part.replace("<run_id>", run_id or "<run_id>") for part in argv]
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode() + b"\n")
        done = subprocess.run(
            [sys.executable, "-m", "orchestrator", *argv],
            stdin=slave,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    finally:
        os.close(slave)
        os.close(master)
    return Done(argv, done.returncode, done.stdout, done.stderr)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.delenv("ONTAP_REKEY_LOG_LEVEL", raising=False)
    monkeypatch.chdir(tmp_path)


def _serve(
    spec: FleetSpec, faults: list[dict[str, Any]], *, tags: bool, job_s: float = 0.02
) -> Iterator[Simulation]:
    scenario = Scenario.model_validate(
        {"options": {"job_duration": {"min_s": job_s / 2, "max_s": job_s}}, "faults": faults}
    )
    with running_simulator(spec, scenario, seed=5) as sim:
        path = write_inventory(Path.cwd() / INVENTORY, spec, sim.urls, ca_bundle=None)
        if tags:
            document = yaml.safe_load(path.read_text())
            for cluster in document["clusters"]:
                cluster["tags"] = ["prod"]
            path.write_text(yaml.safe_dump(document, sort_keys=False))
        yield sim


# -- the documented fix steps, as an administrator sends them ------------------------------


class Ontap:
    """The REST calls of the runbooks' fix steps, against one simulated cluster."""

    def __init__(self, sim: Simulation, cluster: str) -> None:
        self.http = httpx.Client(
            base_url=sim.urls[cluster], auth=("admin", "netapp-sim"), timeout=30.0
        )

    def complete_switch(self, svm: str) -> None:
        """Step 2: `GET key-stores?svm.name=`, `PATCH key-stores/<uuid>` `{"enabled": true}`."""
        found = self._get("/api/security/key-stores", {"svm.name": svm, "fields": "uuid,state"})
        (store,) = found["records"]
        self._answer(
            self.http.patch(f"/api/security/key-stores/{store['uuid']}", json={"enabled": True})
        )
        self._until(lambda: self._store_state(store["uuid"]) == "active")

    def migrate_keys(self, svm: str) -> None:
        """Step 5: from the cluster-scoped key manager to the SVM's AWS KMS configuration,
        then wait for the migrate job."""
        managers = self._get("/api/security/key-managers", {"fields": "uuid,scope"})
        source = next(m for m in managers["records"] if m.get("scope") == "cluster")
        configs = self._get("/api/security/aws-kms", {"svm.name": svm, "fields": "uuid"})
        (dest,) = configs["records"]
        path = f"/api/security/key-managers/{source['uuid']}/migrate"
        answer = self._answer(self.http.post(path, json={"uuid": dest["uuid"]}))
        job = (answer.get("job") or {}).get("uuid")
        if job:
            self._until(lambda: self._get(f"/api/cluster/jobs/{job}", {})["state"] == "success")

    def _store_state(self, uuid: str) -> str | None:
        return self._get(f"/api/security/key-stores/{uuid}", {"fields": "state"}).get("state")

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self._answer(self.http.get(path, params=params))

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code in (404, 405):
            request = response.request
            pytest.skip(f"the simulator lacks {request.method} {request.url.path} (issue 11)")
        response.raise_for_status()
        return response.json() if response.content else {}  # type: ignore[no-any-return]

    @staticmethod
    def _until(condition: Any) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not condition():
            assert time.monotonic() < deadline, "the cluster never got there"
            time.sleep(0.1)


def _report(run_id: str) -> dict[str, Any]:
    path = Path("ontap-rekey-reports", run_id, "report.json")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _failed_with(report: dict[str, Any], code: str) -> list[str]:
    return [
        t["target"]
        for t in report["targets"]
        if t["outcome"] == "failed" and (t.get("error") or {}).get("code") == code
    ]


def _rekeys(sim: Simulation) -> dict[str, int]:
    return {k: len(v["rekeys"]) for k, v in sim.fleet.stats()["svms"].items()}


# -- the quarterly rotation ----------------------------------------------------------------


def _fleet(clusters: int, svms: int, version: str) -> FleetSpec:
    """A generated fleet at one ONTAP version (a key store's `state` shows from 9.16.1)."""
    spec = FleetSpec.generate(clusters, svms)
    return FleetSpec(clusters=[c.model_copy(update={"version": version}) for c in spec.clusters])


ADMIN_SVM_KEYS = [
    {"kind": "keys_in_admin_svm", "cluster": "c001", "svm": svm}
    for svm in ("svm02", "svm03", "svm04")
]
SWITCHING = {"kind": "keystore_switching", "cluster": "c003", "svm": "svm05"}


def test_quarterly_runbook_followed_verbatim_ends_rotated_without_looping() -> None:
    """validate, plan (5) -> complete the switch -> plan (0), run (4: the budget) -> migrate
    the keys -> the re-run of step 5 until 0, report, history (0)."""
    commands = runbook_commands("runbook-quarterly.md")
    validate, plan, run, resume, rerun, report, history = commands
    assert resume[0] == "resume"  # rehearsed by the interrupted-run test below
    for sim in _serve(_fleet(3, 10, "9.16.1"), [*ADMIN_SVM_KEYS, SWITCHING], tags=True):
        assert ontap_rekey(validate).code == 0
        first_plan = ontap_rekey(plan)
        assert first_plan.code == 5, first_plan
        assert "keystore_switching" in json.dumps(_report(first_plan.run_id))
        Ontap(sim, "c003").complete_switch("svm05")
        assert ontap_rekey(plan).code == 0

        first = ontap_rekey(run)
        assert first.code == 4, first
        assert "Rekey 30 targets on 3 clusters?" in first.err
        run_id, attempts = first.run_id, 0
        last = _report(run_id)
        assert last["run"]["status"] == "aborted"
        while True:  # step 5, as often as it takes: it must end
            attempts += 1
            assert attempts <= 4, "the runbook loops"
            for target in _failed_with(last, "65537547"):
                cluster, svm = target.split("/")
                Ontap(sim, cluster).migrate_keys(svm)
            again = ontap_rekey(rerun, run_id)
            assert again.code in (0, 3), again
            run_id, last = again.run_id, _report(again.run_id)
            if again.code == 0:
                break
        assert ontap_rekey(report, run_id).code == 0
        assert ontap_rekey(history).code == 0
        rekeys = _rekeys(sim)
    assert set(rekeys.values()) == {1}  # every SVM rotated, none twice


def test_quarterly_runbook_resume_after_an_interrupt() -> None:
    """Step 4: Ctrl-C once (in-flight rekeys finish, the rest stop: exit 130), then
    `ontap-rekey resume <run_id>` finishes the rotation (exit 0), each SVM rekeyed once."""
    commands = runbook_commands("runbook-quarterly.md")
    run, resume = commands[2], commands[3]
    for sim in _serve(FleetSpec.generate(2, 6), [], tags=True, job_s=1.0):
        argv = [*run, "--yes", "--waves", "100%", "--per-cluster", "1"]
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_a_rekey(sim)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT_S)
        assert process.returncode == 130, err
        interrupted = Done(argv, 130, out, err)
        resumed = ontap_rekey(resume, interrupted.run_id)
        assert resumed.code == 0, resumed
        rekeys = _rekeys(sim)
    assert set(rekeys.values()) == {1}


def _wait_for_a_rekey(sim: Simulation) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not any(_rekeys(sim).values()):
        assert time.monotonic() < deadline, "no rekey started"
        time.sleep(0.05)


# -- the emergency rekey --------------------------------------------------------------------

INCIDENT_FLEET = FleetSpec(
    clusters=[
        ClusterDef(name="east-01", svms=["fin01", "fin02", "fin03", "hr01"]),
        ClusterDef(name="east-02", svms=["fin01", "fin02", "hr01"]),
        ClusterDef(name="west-01", svms=["fin01", "hr01"]),
    ]
)


def test_emergency_runbook_followed_verbatim() -> None:
    """Step 2 rekeys every selected SVM it can, the one with keys in the admin SVM fails
    without aborting the others (exit 3); step 5 migrates them and re-runs it (exit 0)."""
    run, rerun = runbook_commands("runbook-emergency.md")
    faults = [{"kind": "keys_in_admin_svm", "cluster": "east-02", "svm": "fin02"}]
    for sim in _serve(INCIDENT_FLEET, faults, tags=False):
        first = ontap_rekey(run)
        assert first.code == 3, first
        report = _report(first.run_id)
        assert report["run"]["reason"] == "INC-4711: key exposure"
        assert report["run"]["status"] == "finished"
        assert report["totals"]["aborted"] == 0
        assert _failed_with(report, "65537547") == ["east-02/fin02"]
        touched = {k for k, n in _rekeys(sim).items() if n}
        assert touched == {"east-01/fin01", "east-01/fin02", "east-01/fin03", "east-02/fin01"}
        Ontap(sim, "east-02").migrate_keys("fin02")
        again = ontap_rekey(rerun, first.run_id)
        assert again.code == 0, again
        rekeys = _rekeys(sim)
    assert [t["target"] for t in _report(again.run_id)["targets"]] == ["east-02/fin02"]
    assert {k for k, n in rekeys.items() if n} == touched | {"east-02/fin02"}
    assert set(rekeys.values()) <= {0, 1}
