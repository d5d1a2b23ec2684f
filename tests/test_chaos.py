"""Chaos: every fault at once over real sockets, checked against the simulator's ground truth.

Each seed serves a fleet with `running_simulator` (loopback sockets, a background thread)
and runs `execute_run` in-process against it, with the faults of issue 8 mixed together:
dropped connections before and after the rekey POST, 503 with Retry-After, key stores
initializing for 1-3 attempts, responses slower than the client's read timeout, a
permanent code on ~1 % of POSTs, one unreachable cluster and one wrong-password cluster.
`benchmarks/chaos.py` runs the same at 10,000 targets.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.config.loader import load_inventory
from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import Outcome, TargetState
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.engine.scheduling import cluster_lanes
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.store import Ledger
from orchestrator.observe.reports import build_report
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import running_simulator

PER_CLUSTER = 4
UNREACHABLE = "c002"
LOCKED_OUT = "c003"
PERMANENT_CODE = "65537538"  # unwrap_key_failed: fatal, never retried
SLOW_DELAY_S = 0.6
REQUEST_TIMEOUT_S = 0.4  # below SLOW_DELAY_S: "slower than the client timeout"

CHAOS_OPTIONS = RunOptions(
    concurrency=200,
    per_cluster=PER_CLUSTER,
    per_cluster_explicit=True,
    waves="100%",
    backoff_scale=0.001,
    retry_after_cap_s=0.01,
    max_fail_percent=100.0,
    max_attempts=8,
    run_retry_budget=100_000,
    cluster_retry_budget=10_000,
    return_timeout=0,  # jobs outlive the POST: 202, then polls
    request_timeout_s=REQUEST_TIMEOUT_S,
    connect_timeout_s=2.0,
    breaker_threshold=1_000,  # dropped connections must not open healthy clusters' circuits
)


def chaos_scenario(slow_delay_s: float = SLOW_DELAY_S) -> Scenario:
    """Every fault of issue 8 at once (rates per rekey POST unless noted)."""
    return Scenario.model_validate(
        {
            "options": {"job_duration": {"min_s": 0.01, "max_s": 0.05}, "retry_after_s": 1},
            "faults": [
                {"kind": "unreachable", "cluster": UNREACHABLE},
                {"kind": "wrong_password", "cluster": LOCKED_OUT},
                # key store initializing, 1-3 attempts, on 10 % of the SVMs (svm01, svm11..)
                {"kind": "keystore_initializing", "svm": "*1", "cluster": "*[0-2]",
                 "attempts": 1},
                {"kind": "keystore_initializing", "svm": "*1", "cluster": "*[3-5]",
                 "attempts": 2},
                {"kind": "keystore_initializing", "svm": "*1", "cluster": "*[6-9]",
                 "attempts": 3},
                {"kind": "unwrap_key_failed", "rate": 0.01},
                {"kind": "http_errors", "rate": 0.03, "statuses": [503], "requests": "rekey"},
                {"kind": "drop_before", "rate": 0.025},
                {"kind": "drop_after", "rate": 0.025},
                {"kind": "slow", "rate": 0.02, "delay_s": slow_delay_s},
            ],
        }
    )  # fmt: skip


@dataclass
class ChaosResult:
    seed: int
    targets: int
    seconds: float
    outcomes: dict[str, int]
    accepted: int
    double: int
    unverified: dict[str, int]  # reason -> count


def run_chaos(
    seed: int,
    clusters: int,
    svms: int,
    workdir: Path,
    *,
    timeout_scale: float = 1.0,
    concurrency: int = CHAOS_OPTIONS.concurrency,
    overlap: bool = False,
) -> ChaosResult:
    """One seeded chaos run; asserts every invariant; returns counts for the record.

    `overlap`: discovery overlapped with the rotation (`run --yes`'s order; the engine
    overlaps only when the clusters take lanes), checked against what the run recorded.

    `timeout_scale` multiplies the client read timeout and the slow answers' delay alike:
    at 10,000 targets the simulator and the engine share one process (one GIL), and an
    ordinary answer may take longer than 0.4 s.
    """
    spec = FleetSpec.generate(clusters, svms)
    options = replace(
        CHAOS_OPTIONS,
        request_timeout_s=REQUEST_TIMEOUT_S * timeout_scale,
        concurrency=concurrency,
        overlap_discovery=overlap,
    )
    started = time.perf_counter()
    with running_simulator(spec, chaos_scenario(SLOW_DELAY_S * timeout_scale), seed=seed) as sim:
        path = workdir / f"chaos-{seed}.yaml"
        write_inventory(path, spec, sim.urls, ca_bundle=None)
        inventory = load_inventory(path, environ={PASSWORD_ENV: "netapp-sim"})
        with Ledger.open(workdir / f"chaos-{seed}.db") as ledger:
            wiring = Wiring(AsyncLedger(ledger), handle_signals=False)
            request = RunRequest(inventory, Selection(), options)
            result = anyio.run(execute_run, request, wiring)
            assert result is not None
            stored = RunOptions.from_json(ledger.get_run(result.run.run_id).options)
            assert stored.overlap_discovery is (
                overlap and cluster_lanes([PER_CLUSTER] * clusters, concurrency) is not None
            )
            run_id = result.run.run_id
            rows = ledger.targets(run_id)
            transitions = ledger.transitions(run_id)
            report = build_report(result.run, rows, transitions)
        truth = sim.fleet.stats()
    seconds = time.perf_counter() - started
    uncertain = {f"{t.key.cluster}/{t.key.svm}" for t in transitions if t.state == "uncertain"}
    accepted, double = check_invariants(rows, report, truth, svms, uncertain)
    # the global limit never exceeded, fleet-wide
    assert truth["fleet"]["peak_concurrent_rekeys"] <= concurrency, truth["fleet"]
    unverified = Counter(str(r.reason) for r in rows if r.outcome == Outcome.UNVERIFIED)
    return ChaosResult(
        seed,
        len(rows),
        seconds,
        dict(Counter(str(r.outcome) for r in rows)),
        accepted,
        double,
        dict(unverified),
    )


def check_invariants(
    rows: list[Any],
    report: dict[str, Any],
    truth: dict[str, Any],
    svms: int,
    uncertain: set[str],
) -> tuple[int, int]:
    """Every invariant of issue 8; returns (accepted rekeys, double rekeys).

    `uncertain`: targets with a POST whose answer never arrived (a read timeout or a
    dropped connection): the simulator may have answered it with the permanent code to a
    client that had already given up, so a later attempt there is not a retry of it.
    """
    by_name = {f"{r.key.cluster}/{r.key.svm}": r for r in rows}
    # every target exactly one terminal outcome
    assert len(by_name) == len(rows), "a target has two rows"
    outcomes = {o.value for o in Outcome}
    for name, row in by_name.items():
        assert row.state == TargetState.DONE, (name, row.state)
        assert row.outcome in outcomes, (name, row.outcome)
    # no double rekey
    doubles = {n: s["rekeys"] for n, s in truth["svms"].items() if len(s["rekeys"]) > 1}
    assert not doubles, f"double rekeys: {doubles}"
    # every accepted rekey accounted for
    accepted = {n: s["rekeys"][0] for n, s in truth["svms"].items() if s["rekeys"]}
    for name, rekey in accepted.items():
        row = by_name.get(name)
        assert row is not None, f"{name}: rekeyed by the simulator but not in the ledger"
        if rekey["outcome"] == "success":
            assert row.outcome == Outcome.REKEYED or (
                row.outcome == Outcome.UNVERIFIED and row.reason
            ), (name, row.outcome, row.reason, row.error_code)
    for name, row in by_name.items():
        if row.outcome == Outcome.REKEYED:
            assert name in accepted and accepted[name]["outcome"] == "success", name
            assert truth["svms"][name]["key_id"] == row.key_id_after, name
    # no retry of a permanent error: it was answered once, and nothing was sent after it
    # (earlier attempts may have met retryable faults)
    permanent = 0
    for name, row in by_name.items():
        refused = truth["svms"].get(name, {}).get("refusals", {}).get(PERMANENT_CODE, 0)
        if row.outcome == Outcome.FAILED and row.error_code == PERMANENT_CODE:
            permanent += 1
            assert refused == 1, (name, truth["svms"][name])
            assert name not in accepted, name
            assert truth["svms"][name]["attempts"] <= row.attempts, (name, row.attempts)
        else:  # the orchestrator never saw the code: the answer went to a closed socket
            assert refused == 0 or name in uncertain, (name, row.outcome, truth["svms"][name])
    # no request after a 401 on that cluster
    locked = truth["clusters"][LOCKED_OUT]
    assert locked["failed_logins"] == 1, locked
    assert sum(r["count"] for r in locked["requests"]) == 1, locked["requests"]
    assert not [n for n in truth["svms"] if n.startswith(f"{LOCKED_OUT}/")] or all(
        truth["svms"][n]["attempts"] == 0 for n in truth["svms"] if n.startswith(f"{LOCKED_OUT}/")
    )
    for name, row in by_name.items():
        if name.startswith(f"{LOCKED_OUT}/"):
            assert (row.outcome, row.reason) == (Outcome.SKIPPED, "auth_failed"), (name, row)
        if name.startswith(f"{UNREACHABLE}/"):
            assert (row.outcome, row.reason) == (Outcome.SKIPPED, "unreachable"), (name, row)
    # per-cluster concurrency never exceeded
    for cluster, entry in truth["clusters"].items():
        assert entry["peak_concurrent_rekeys"] <= PER_CLUSTER, (cluster, entry)
    # the report's totals equal the ground truth
    totals = report["totals"]
    successes = sum(1 for r in accepted.values() if r["outcome"] == "success")
    assert totals["targets"] == len(rows)
    # `unverified` is the honest price of missing evidence: a rekey that happened but was
    # not confirmed, or a POST without an answer that the job search could not settle
    # (never re-sent). Only the first may hide a rekey.
    unconfirmed = [n for n in accepted if by_name[n].outcome == Outcome.UNVERIFIED]
    unsettled = [
        n for n, r in by_name.items() if r.outcome == Outcome.UNVERIFIED and n not in accepted
    ]
    for name in unsettled:
        assert by_name[name].reason == "cannot_settle", (name, by_name[name].reason)
    assert totals["unverified"] == len(unconfirmed) + len(unsettled), totals
    assert totals["rekeyed"] + len(unconfirmed) == successes, (totals, successes)
    assert totals["rekeyed"] == sum(1 for n in accepted if by_name[n].outcome == Outcome.REKEYED)
    counted = Counter(str(r.outcome) for r in rows)
    for outcome in outcomes:
        assert totals[outcome] == counted.get(outcome, 0), (outcome, totals, counted)
    # reachable, authenticated clusters: every SVM has a row
    reachable = [c for c in truth["clusters"] if c not in {UNREACHABLE, LOCKED_OUT}]
    for cluster in reachable:
        assert sum(1 for n in by_name if n.startswith(f"{cluster}/")) == svms, cluster
    return len(accepted), len(doubles)


@pytest.mark.chaos
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_chaos_invariants_hold(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    result = run_chaos(seed, clusters=20, svms=20, workdir=tmp_path)
    assert result.targets >= 20 * 18  # two clusters may show one row each
    assert result.outcomes.get("rekeyed", 0) > 300
    # Every target reached one outcome (no row left in flight) and none was rekeyed twice;
    # how long it took is the benchmark's business (`benchmarks/chaos.py` prints it), and a
    # hang is caught by the suite's per-test timeout, not by a wall-clock assert here.
    assert set(result.outcomes) <= {o.value for o in Outcome}, result
    assert result.double == 0, result


@pytest.mark.chaos
@pytest.mark.parametrize("overlap", [False, True], ids=["plan-first", "overlapped"])
def test_chaos_invariants_hold_with_cluster_lanes(
    overlap: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same mix with the global limit far below the clusters' (20 x 4 slots under
    --concurrency 16): 5 clusters fed at a time (`cluster_lanes`), and still no double
    rekey, no limit exceeded (per cluster and fleet-wide), one outcome per target; in
    both orders (overlapped: each cluster's rows committed and its targets started as it
    is discovered, while the lanes rotate the earlier ones)."""
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    assert cluster_lanes([PER_CLUSTER] * 20, 16) == 5  # lanes are in play here
    result = run_chaos(4, clusters=20, svms=10, workdir=tmp_path, concurrency=16, overlap=overlap)
    assert result.targets >= 20 * 10 - 2 * 9  # two clusters may show one row each
    assert result.outcomes.get("rekeyed", 0) > 150
    assert set(result.outcomes) <= {o.value for o in Outcome}, result
    assert result.double == 0, result


@pytest.mark.chaos
@pytest.mark.parametrize("index", range(6))
def test_chaos_matrix_slice_holds_every_invariant(index: int, tmp_path: Path) -> None:
    """A slice of `benchmarks/chaos.py --matrix` (every switch value once in each order:
    the plan first, and discovery overlapped with the rotation under `--concurrency 8`,
    below the 5 clusters' 20 slots): the chaos mix, one SIGKILL + resume, at each cell's
    ONTAP version and switches. `run_cell` checks the invariants (limits per cluster and
    fleet-wide, one outcome each, no double rekey, totals = ground truth) and the order
    the run recorded."""
    from tests.chaos_matrix import ci_slice, run_cell

    cell = ci_slice()[index]
    result = run_cell(cell, clusters=5, svms=6, kills=1, seed=index + 1, workdir=tmp_path)
    assert result.overlapped is cell.overlapped
    assert result.doubles == 0
    assert result.targets >= 3 * 6  # the unreachable and the locked-out cluster: 1 row each
    assert "aborted" not in result.outcomes, result  # the last resume ran to the end
    # A kill in the clusters' first round leaves their intents in flight unprovable
    # (`unverified: cannot_settle`, never re-sent: by design), up to the global limit's
    # worth: 8 of the 18 when an overlapped cell's kill comes early (seen under load).
    assert result.outcomes.get("rekeyed", 0) >= result.targets // 3, result


if __name__ == "__main__":  # a quick manual run
    os.environ.setdefault(PASSWORD_ENV, "netapp-sim")
    with tempfile.TemporaryDirectory() as tmp:
        print(run_chaos(1, 20, 20, Path(tmp)))
