"""The six defects of issue 12's "Why", one test each; every one fails on the engine before
the lifecycle state machine (commit 042859f)."""

from __future__ import annotations

import sqlite3
import ssl
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from orchestrator.cli import main
from orchestrator.core.inventory import ClusterSpec
from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.engine.runner import RunRequest, RunResult, Wiring, execute_run, resume_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus, TargetRow, Transition
from orchestrator.ledger.store import Ledger
from tests.engine.faulty import rewriting
from tests.simfleet import FAST, SimFleet, scenario, sim_fleet

pytestmark = pytest.mark.anyio

Factory = Callable[[ClusterSpec], httpx.AsyncBaseTransport]


async def _run(
    ledger: Ledger, sim: SimFleet, factory: Factory | None = None, **options: Any
) -> RunResult:
    wiring = Wiring(
        AsyncLedger(ledger), transport_factory=factory or sim.transport(), handle_signals=False
    )
    request = RunRequest(sim.inventory, Selection(), replace(FAST, **options))
    result = await execute_run(request, wiring)
    assert result is not None
    return result


def _truth(sim: SimFleet) -> dict[str, Any]:
    return sim.fleet.stats()


# -- 1. a recorded job lost to expiry, then absence taken as proof -----------------------------


async def test_1_a_recorded_job_that_expired_is_never_resent(tmp_path: Path) -> None:
    """The job uuid is in the ledger (SUBMITTED) and its record expired before the resume:
    absence of the record proves nothing, the target is decided by read-back, no 2nd POST."""
    sim = sim_fleet(1, 2, scenario=scenario(job_expiry_s=0.05))
    with Ledger.open(tmp_path / "state.db") as ledger:
        first = await _run(ledger, sim)
        run_id = first.run.run_id
        # the crash: accepted, job recorded, outcome not yet known
        crashed = [
            replace(
                row,
                state=TargetState.SUBMITTED,
                outcome=None,
                finished_at=None,
                intent_at=time.time(),
            )
            for row in ledger.targets(run_id)
        ]
        ledger.write([(row, None) for row in crashed])
        ledger.set_run_status(run_id, RunStatus.ACTIVE)
        await anyio.sleep(0.2)  # the job records expire
        wiring = Wiring(
            AsyncLedger(ledger), transport_factory=sim.transport(), handle_signals=False
        )
        request = RunRequest(sim.inventory, Selection(), FAST)
        resumed = await resume_run(ledger.get_run(run_id), request, wiring)
    assert set(sim.rekeys().values()) == {1}, sim.rekeys()
    assert {row.outcome for row in resumed.rows} <= {"rekeyed", "unverified"}


async def test_1b_a_dropped_answer_whose_job_expired_at_once_is_never_resent(
    tmp_path: Path,
) -> None:
    """Accepted, the answer dropped, the job record gone before the settle: on a cluster
    whose record lifetime is not witnessed, "no job" is not proof: `unverified`, 1 rekey."""
    sim = sim_fleet(
        1,
        3,
        scenario=scenario({"kind": "drop_after", "svm": "svm02", "rate": 1.0}, job_expiry_s=0.05),
    )
    with Ledger.open(tmp_path / "state.db") as ledger:
        result = await _run(ledger, sim, per_cluster=1)
    assert set(sim.rekeys().values()) == {1}, sim.rekeys()
    row = {str(r.key): r for r in result.rows}["c001/svm02"]
    assert (row.outcome, row.reason) == ("unverified", "cannot_settle")


# -- 2. the slot given back while an uncertain POST's job runs ---------------------------------


async def test_2_an_uncertain_post_keeps_its_cluster_slot_while_its_job_may_run(
    tmp_path: Path,
) -> None:
    sim = sim_fleet(
        1,
        4,
        scenario=scenario(
            {"kind": "drop_after", "svm": "svm01", "rate": 1.0},
            job_duration={"min_s": 0.3, "max_s": 0.3},
        ),
    )
    with Ledger.open(tmp_path / "state.db") as ledger:
        result = await _run(ledger, sim, per_cluster=1, return_timeout=0)
    assert {row.outcome for row in result.rows} == {"rekeyed"}
    assert _truth(sim)["clusters"]["c001"]["peak_concurrent_rekeys"] == 1
    assert set(sim.rekeys().values()) == {1}


# -- 3. an exception other than a cancel closed the run `finished` -----------------------------


class _BrokenLedger(AsyncLedger):
    """Commits the first `ok` writes, then every write fails (a full disk)."""

    ok = 6

    async def write(self, row: TargetRow, transition: Transition | None = None) -> None:
        if self.stats.writes >= self.ok:
            raise sqlite3.OperationalError("database or disk is full")
        await super().write(row, transition)


async def test_3_an_unexpected_error_leaves_the_run_interrupted_and_resumable(
    tmp_path: Path,
) -> None:
    sim = sim_fleet(1, 4, scenario=scenario())
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = Wiring(
            _BrokenLedger(ledger), transport_factory=sim.transport(), handle_signals=False
        )
        request = RunRequest(sim.inventory, Selection(), replace(FAST, per_cluster=1))
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the class is the point below
            await execute_run(request, wiring)
        (record,) = ledger.list_runs()
        assert record.status is RunStatus.INTERRUPTED
        message = str(caught.value)
        assert f"ontap-rekey resume {record.run_id}" in message and "\n" not in message
        wiring.store = AsyncLedger(ledger)
        resumed = await resume_run(record, request, wiring)
    assert {row.outcome for row in resumed.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}


# -- 4. a new `run` after a kill -9 started silently beside the crashed run --------------------


def test_4_run_refuses_while_a_crashed_run_has_targets_in_flight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ONTAP_PASSWORD", "x")
    inventory = tmp_path / "fleet.yaml"
    inventory.write_text(
        "version: 1\n"
        "defaults:\n  auth: {username: admin, password_env: ONTAP_PASSWORD}\n"
        "clusters:\n  - name: c1\n    host: http://127.0.0.1:9\n    svms: [svm1, svm2]\n"
    )
    db = tmp_path / "state.db"
    with Ledger.open(db) as ledger:
        record = RunRecord(
            run_id="20260101-000000-dead",
            mode=RunMode.RUN,
            inventory_path=str(inventory),
            inventory_sha256="0" * 64,
            options=RunOptions().to_json(),
            operator="test@host",
            started_at=time.time(),
        )
        ledger.create_run(record)  # ACTIVE, its lock free: it crashed
        ledger.add_targets(
            [
                TargetRow(record.run_id, TargetKey("c1", "svm1"), state=TargetState.INTENT),
                TargetRow(record.run_id, TargetKey("c1", "svm2")),
            ]
        )
    code = main(["run", str(inventory), "--yes", "--state", str(db), "--log-format", "json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    line = err[-1]
    assert record.run_id in line and f"ontap-rekey resume {record.run_id}" in line
    with Ledger.open(db) as ledger:
        assert [r.run_id for r in ledger.list_runs()] == [record.run_id]  # nothing started


# -- 5. settling by one guessed description, and `svm_kek_rekey` only from 9.16.1 ---------------


async def test_5_another_job_description_on_9_14_is_settled_not_resent(tmp_path: Path) -> None:
    """ONTAP words the job description otherwise, and (before 9.16.1) shows no key store
    `state`: a dropped answer must still be found (calibrated description), not re-sent."""
    sim = sim_fleet(
        1,
        4,
        scenario=scenario(
            {"kind": "drop_after", "svm": "svm0[34]", "rate": 1.0},
            job_duration={"min_s": 0.2, "max_s": 0.2},
        ),
    )
    factory = rewriting(
        sim, description=lambda _text: "Rekey the SVM key encryption key", no_key_store_state=True
    )
    with Ledger.open(tmp_path / "state.db") as ledger:
        result = await _run(ledger, sim, factory, per_cluster=1, return_timeout=0)
    assert set(sim.rekeys().values()) == {1}, sim.rekeys()
    assert {row.outcome for row in result.rows} == {"rekeyed"}


# -- 6. 401 on a poll, a read-back or a settle never reached the breaker -----------------------


class _PasswordRotated:
    """Every request after the first rekey POST's answer is answered 401 (the account's
    password was changed mid-run); counts the 401s the cluster gave."""

    def __init__(self) -> None:
        self.posted = False
        self.unauthorized = 0

    def __call__(self, request: httpx.Request) -> httpx.Response | None:
        if self.posted:
            self.unauthorized += 1
            return httpx.Response(401, json={"error": {"code": "6", "message": "denied"}})
        if request.method == "POST":
            self.posted = True
        return None


async def test_6_a_401_on_a_job_poll_closes_the_cluster_at_once(tmp_path: Path) -> None:
    sim = sim_fleet(1, 4, scenario=scenario(job_duration={"min_s": 0.2, "max_s": 0.2}))
    hook = _PasswordRotated()
    factory = rewriting(sim, hook=hook)
    with Ledger.open(tmp_path / "state.db") as ledger:
        result = await _run(
            ledger, sim, factory, per_cluster=1, return_timeout=0, max_fail_percent=100.0
        )
    assert hook.unauthorized == 1  # never a second login attempt after a 401
    outcomes = {str(r.key): (r.outcome, r.reason) for r in result.rows}
    assert outcomes.pop("c001/svm01") == ("unverified", "auth_failed_while_settling")
    assert set(outcomes.values()) == {("skipped", "auth_failed")}
    assert sum(sim.rekeys().values()) == 1


def test_4b_an_unfinished_run_elsewhere_does_not_block_another_selection(
    tmp_path: Path,
) -> None:
    """Only in-flight targets *among the selection* block a new run."""
    sim = sim_fleet(2, 2, scenario=scenario())
    with Ledger.open(tmp_path / "state.db") as ledger:
        record = RunRecord(
            run_id="20260101-000000-beef",
            mode=RunMode.RUN,
            inventory_path="inventory.yaml",
            inventory_sha256="0" * 64,
            options=RunOptions().to_json(),
            operator="test@host",
            started_at=time.time(),
        )
        ledger.create_run(record)
        ledger.add_targets(
            [TargetRow(record.run_id, TargetKey("c002", "svm01"), state=TargetState.UNCERTAIN)]
        )
        wiring = Wiring(
            AsyncLedger(ledger), transport_factory=sim.transport(), handle_signals=False
        )
        only_c001 = Selection(clusters=("c001",))
        request = RunRequest(sim.inventory, only_c001, FAST)
        done = await_run(request, wiring)
    assert {row.outcome for row in done.rows} == {"rekeyed"}
    assert {str(row.key) for row in done.rows} == {"c001/svm01", "c001/svm02"}


def await_run(request: RunRequest, wiring: Wiring) -> RunResult:
    result = anyio.run(execute_run, request, wiring)
    assert result is not None
    return result


class _TlsBroken:
    """Every request after the first rekey POST fails its TLS handshake (a certificate
    replaced mid-run); counts the handshakes that failed."""

    def __init__(self) -> None:
        self.posted = False
        self.failures = 0

    def __call__(self, request: httpx.Request) -> httpx.Response | None:
        if self.posted:
            self.failures += 1
            raise ssl.SSLCertVerificationError("certificate verify failed: self-signed")
        if request.method == "POST":
            self.posted = True
        return None


async def test_6b_tls_failures_on_polls_and_posts_open_the_circuit(tmp_path: Path) -> None:
    sim = sim_fleet(1, 5, scenario=scenario(job_duration={"min_s": 0.2, "max_s": 0.2}))
    hook = _TlsBroken()
    with Ledger.open(tmp_path / "state.db") as ledger:
        result = await _run(
            ledger,
            sim,
            rewriting(sim, hook=hook),
            per_cluster=1,
            return_timeout=0,
            max_fail_percent=100.0,
            breaker_threshold=2,
            breaker_cooldown_s=0.05,
        )
    outcomes = [(r.outcome, r.reason) for r in result.rows]
    assert ("skipped", "circuit_open") in outcomes
    assert hook.failures <= 3  # the poll, one POST, the half-open probe: then the cluster rests
    assert sum(sim.rekeys().values()) == 1
