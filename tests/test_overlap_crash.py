"""Issue 16: SIGKILL / SIGINT an overlapped `run` (each cluster's targets start as it is
discovered) while discovery is still going on, then `resume`.

The fleet of test_crash_resume (10 x 50, short jobs, 1 % of POSTs dropped after they were
accepted), with every request to half the clusters slowed down: their discovery ends
seconds after the other half's targets started, so kills land while the ledger holds the
rows of some clusters and not of others. `run --yes --waves 100%` overlaps discovery (the
run's options say so); each cluster's rows are committed in one transaction, so after any
kill a cluster has all its rows or none, and `resume` discovers the ones with none.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orchestrator.core.targets import Outcome, TargetState
from orchestrator.ledger.records import RunRecord, RunStatus
from orchestrator.simulator.fleet import cluster_names
from orchestrator.simulator.scenario import Scenario
from tests.test_crash_resume import (
    CLUSTERS,
    EXIT_TIMEOUT_S,
    IN_FLIGHT,
    SCENARIO,
    SEED,
    SVMS,
    TARGETS,
    Setup,
    _accepted_rekeys,
    _check_final,
    _check_integrity,
    _count,
    _rows_and_transitions,
    _the_run,
    _transitions,
    _wait,
    _wait_for_progress,
    serving,
)

pytestmark = pytest.mark.slow

KILLS = 5
SLOW_CLUSTERS = "c00[1-5]"  # FleetSpec.generate names them c001 ... c010
# Every request to a slow cluster takes 0.2-0.4 s: its discovery (several requests) ends
# 1-2 s after the fast clusters' targets started. `--per-cluster 16` keeps their rotation
# short (about 7 s for the whole fleet instead of 15).
LATENCY = "min_s: 0.2, max_s: 0.4"
RUN_ARGS = ("--yes", "--waves", "100%", "--request-timeout", "2", "--per-cluster", "16")
DISCOVERED = "SELECT count(DISTINCT cluster) FROM targets"
# Targets about to POST that a kill now would leave unprovable. Resume proves that a POST
# recorded as intended was never sent only from a listing of the cluster's jobs, and only
# while the cluster's job records outlive the intent's age: known from a job seen ended
# before the intent (`core.settling.absence_proven`; the listing's own time counts too). An
# intent from before its cluster's first finished target (plus a margin for that listing)
# ends `unverified: cannot_settle` when its POST never went out, in any run of one wave,
# overlapped or not: not what these tests are about, so no kill lands there.
WITHOUT_DONE = """
SELECT count(*) FROM (SELECT cluster FROM targets GROUP BY cluster HAVING sum(state = 'done') = 0)
"""
UNPROVABLE = """
SELECT count(*) FROM targets t WHERE t.state = 'intent'
AND coalesce(t.intent_at, 0) <= 0.5 + coalesce((SELECT min(d.finished_at) FROM targets d
    WHERE d.run_id = t.run_id AND d.cluster = t.cluster AND d.state = 'done'), 1e18)
"""


def _scenario(slow: str) -> Scenario:
    latency = f'  - {{kind: latency, cluster: "{slow}", {LATENCY}}}\n'
    return Scenario.from_yaml(SCENARIO + latency)


@contextmanager
def _serving(tmp_path: Path, slow: str) -> Iterator[Setup]:
    with serving(tmp_path, _scenario(slow)) as setup:
        yield setup


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Setup]:
    """Half the clusters slow to answer."""
    with _serving(tmp_path, SLOW_CLUSTERS) as setup:
        yield setup


@pytest.fixture
def slow_fleet(tmp_path: Path) -> Iterator[Setup]:
    """Every cluster slow to answer: no row for a second or more after discovery starts."""
    with _serving(tmp_path, "*") as setup:
        yield setup


def _run(setup: Setup) -> subprocess.Popen[bytes]:
    return setup.spawn("run", str(setup.inventory), *RUN_ARGS)


def _discovered(setup: Setup) -> int:
    """How many clusters have rows in the ledger."""
    return _count(setup.db, DISCOVERED)


def _wait_for_discovery(setup: Setup, proc: subprocess.Popen[bytes], more_than: int) -> int:
    """Poll until more than `more_than` clusters have rows; their count."""
    while (found := _discovered(setup)) <= more_than:
        assert proc.poll() is None, (
            f"the child exited ({proc.returncode}) with {found} clusters discovered\n"
            f"{setup.output()}"
        )
        time.sleep(0.005)
    return found


def _wait_provable(setup: Setup, proc: subprocess.Popen[bytes]) -> None:
    """Poll until no target in flight is one a kill would leave unprovable (UNPROVABLE)."""
    while _count(setup.db, UNPROVABLE) > 0:
        assert proc.poll() is None, setup.output()
        time.sleep(0.005)


def _wait_mid_discovery(setup: Setup, proc: subprocess.Popen[bytes]) -> int:
    """Poll until some clusters' targets are rotating (one finished on each, none in flight
    unprovable) while others are not discovered yet; how many clusters have rows."""
    _wait_for_discovery(setup, proc, 0)
    while _count(setup.db, WITHOUT_DONE) > 0:
        assert proc.poll() is None, setup.output()
        time.sleep(0.005)
    _wait_provable(setup, proc)
    found = _discovered(setup)
    assert found < CLUSTERS, f"discovery ended before the kill\n{setup.output()}"
    return found


def _kill(setup: Setup, proc: subprocess.Popen[bytes], what: str) -> None:
    assert proc.poll() is None, (
        f"the child exited ({proc.returncode}) before {what}\n{setup.output()}"
    )
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=EXIT_TIMEOUT_S) == -signal.SIGKILL


def _rows_per_cluster(setup: Setup, run_id: str) -> Counter[str]:
    rows, _ = _rows_and_transitions(setup.db, run_id)
    return Counter(row.key.cluster for row in rows)


def _check_after_stop(setup: Setup, status: RunStatus) -> RunRecord:
    """The ledger after the child stopped: sound, one overlapped run in `status`, and each
    cluster with all its rows or none (one transaction per cluster)."""
    _check_integrity(setup.db)
    record = _the_run(setup.db)
    assert record is not None, "no run recorded though clusters have rows"
    assert record.status is status
    assert record.options.get("overlap_discovery") is True, record.options
    per_cluster = _rows_per_cluster(setup, record.run_id)
    partial = {name: n for name, n in per_cluster.items() if n != SVMS}
    assert partial == {}, f"clusters with only part of their rows: {partial}"
    # an intent is committed before its POST, and a row before its intent
    assert _rekeyed_clusters(setup) <= set(per_cluster), "a rekey on a cluster without rows"
    return record


def _log(setup: Setup, round_: int, command: str) -> str:
    return (setup.tmp / f"{round_:02}-{command}.jsonl").read_text()


def _events(setup: Setup, round_: int, command: str, event: str) -> list[dict[str, Any]]:
    lines = _log(setup, round_, command).splitlines()
    return [entry for entry in map(json.loads, lines) if entry["event"] == event]


def _rekeyed_clusters(setup: Setup) -> set[str]:
    """The clusters where the simulator accepted a rekey (ground truth)."""
    return {name.split("/")[0] for name, entries in _accepted_rekeys(setup.sim).items() if entries}


# -- 1. SIGKILL at seeded random moments, the first ones while discovery goes on ---------


def test_sigkill_during_and_after_discovery_then_resume(fleet: Setup) -> None:
    rng = random.Random(SEED)
    run_id: str | None = None
    kills: list[str] = []
    while len(kills) < KILLS:
        before = _transitions(fleet.db)
        proc = _run(fleet) if run_id is None else fleet.resume(run_id)
        discovered = _discovered(fleet)
        if run_id is None:
            _wait_mid_discovery(fleet, proc)
            moment = "discovering"
        elif discovered < CLUSTERS and len(kills) < 2:
            # while resume discovers the clusters the kill left without rows (it rotates
            # nothing before they are in)
            _wait_for_discovery(fleet, proc, discovered)
            moment = "resume discovering"
        elif rng.random() < 0.25:
            time.sleep(rng.uniform(0.05, 0.6))  # start-up, settling in-flight rows
            moment = "early"
        else:
            assert _wait_for_progress(fleet.db, proc, before), (
                f"the child finished before kill {len(kills) + 1}\n{fleet.output()}"
            )
            time.sleep(rng.uniform(0.0, 0.6))
            moment = "mid"
        if moment != "resume discovering":
            _wait_provable(fleet, proc)
        _kill(fleet, proc, f"kill {len(kills) + 1}")
        run_id = _check_after_stop(fleet, RunStatus.ACTIVE).run_id  # crashed: never closed
        done = _count(fleet.db, "SELECT count(*) FROM targets WHERE state = 'done'")
        in_flight = _count(fleet.db, IN_FLIGHT)
        kills.append(f"{moment}: {_discovered(fleet)} clusters, {done} done, {in_flight} in flight")
    print("kills:", *kills, sep="\n  ")
    # the first kill came while the run had discovered some clusters, not all
    assert not kills[0].startswith(f"discovering: {CLUSTERS} clusters"), kills
    open_rows = _count(fleet.db, "SELECT count(*) FROM targets WHERE state != 'done'")
    assert _discovered(fleet) < CLUSTERS or open_rows > 0, kills
    assert run_id is not None
    final = fleet.resume(run_id)
    assert _wait(final, fleet) == 0, fleet.output()
    record = _check_after_stop(fleet, RunStatus.FINISHED)
    totals = _check_final(fleet, record.run_id, exactly_one_done_transition=True)
    assert totals == {Outcome.REKEYED.value: TARGETS}, (totals, kills)


# -- 2. a kill mid-discovery: resume discovers the clusters without rows ------------------


def test_resume_discovers_the_clusters_a_kill_left_without_rows(fleet: Setup) -> None:
    proc = _run(fleet)
    _wait_mid_discovery(fleet, proc)
    _kill(fleet, proc, "the kill")
    record = _check_after_stop(fleet, RunStatus.ACTIVE)
    had = set(_rows_per_cluster(fleet, record.run_id))
    assert 0 < len(had) < CLUSTERS, f"the kill came after discovery: {sorted(had)}"
    # the fast clusters' targets had started (some finished) before the slow ones were in
    assert _count(fleet.db, "SELECT count(*) FROM targets WHERE state = 'done'") > 0
    final = fleet.resume(record.run_id)
    assert _wait(final, fleet) == 0, fleet.output()
    record = _check_after_stop(fleet, RunStatus.FINISHED)
    names = cluster_names(CLUSTERS)
    assert _rows_per_cluster(fleet, record.run_id) == dict.fromkeys(names, SVMS)
    (resumed,) = _events(fleet, 2, "resume", "run.resume_discovery")
    assert resumed["clusters"] == CLUSTERS - len(had)
    discovered = {e["cluster"] for e in _events(fleet, 2, "resume", "discovery.started")}
    assert discovered == set(names) - had, "resume discovered other clusters than the missing"
    totals = _check_final(fleet, record.run_id, exactly_one_done_transition=True)
    assert totals == {Outcome.REKEYED.value: TARGETS}


# -- 3. a second SIGINT while discovery goes on: cancelled at once, resume finishes ------


def test_second_sigint_during_discovery_then_resume(fleet: Setup) -> None:
    proc = _run(fleet)
    _wait_mid_discovery(fleet, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.15)
    assert proc.poll() is None, "the first SIGINT did not drain" + fleet.output()
    proc.send_signal(signal.SIGINT)
    assert _wait(proc, fleet) == 130, fleet.output()
    assert '"action": "cancel"' in _log(fleet, 1, "run"), "the second SIGINT did not cancel"
    record = _check_after_stop(fleet, RunStatus.INTERRUPTED)
    left = CLUSTERS - _discovered(fleet)
    assert left > 0, "discovery ended before the cancel: resume has nothing to discover"
    final = fleet.resume(record.run_id)
    assert _wait(final, fleet) == 0, fleet.output()
    (resumed,) = _events(fleet, 2, "resume", "run.resume_discovery")
    assert resumed["clusters"] == left
    record = _check_after_stop(fleet, RunStatus.FINISHED)
    totals = _check_final(fleet, record.run_id, exactly_one_done_transition=False)
    assert totals == {Outcome.REKEYED.value: TARGETS}
    assert {len(e) for e in _accepted_rekeys(fleet.sim).values()} == {1}


# -- 4. a kill before any cluster has rows: no run; a new `run` does everything ----------


def test_kill_before_any_row_leaves_no_run(slow_fleet: Setup) -> None:
    proc = _run(slow_fleet)
    log = slow_fleet.tmp / "01-run.jsonl"
    while not (log.exists() and '"event": "discovery.started"' in log.read_text()):
        assert proc.poll() is None, slow_fleet.output()
        time.sleep(0.005)
    _kill(slow_fleet, proc, "the kill")
    assert _discovered(slow_fleet) == 0, "a cluster was discovered before the kill"
    _check_integrity(slow_fleet.db)
    assert _the_run(slow_fleet.db) is None
    assert all(not e for e in _accepted_rekeys(slow_fleet.sim).values())
    again = _run(slow_fleet)
    assert _wait(again, slow_fleet) == 0, slow_fleet.output()
    record = _check_after_stop(slow_fleet, RunStatus.FINISHED)
    totals = _check_final(slow_fleet, record.run_id, exactly_one_done_transition=True)
    assert totals == {Outcome.REKEYED.value: TARGETS}


# -- 5. a first SIGINT while discovery goes on: drained, every target still has a row ----


def test_first_sigint_during_discovery_drains_and_discovery_completes(fleet: Setup) -> None:
    proc = _run(fleet)
    _wait_for_discovery(fleet, proc, 0)
    proc.send_signal(signal.SIGINT)
    seen_at_signal = _discovered(fleet)
    assert _wait(proc, fleet) == 130, fleet.output()
    assert seen_at_signal < CLUSTERS, "the SIGINT came after discovery"
    record = _check_after_stop(fleet, RunStatus.INTERRUPTED)
    rows, transitions = _rows_and_transitions(fleet.db, record.run_id)
    assert len(rows) == TARGETS, "discovery did not complete after the first SIGINT"
    posted = {t.key for t in transitions if t.event == "attempt.started"}
    for row in rows:
        assert row.state is TargetState.DONE, f"{row.key} left {row.state}"
        if row.key in posted:  # in flight at the signal: finished
            assert row.outcome == Outcome.REKEYED.value, (row.key, row.outcome, row.reason)
        else:
            assert (row.outcome, row.reason) == (Outcome.ABORTED.value, "interrupt"), row
    late = {row.key.cluster for row in rows} - {key.cluster for key in posted}
    assert late, "every cluster had a target started: the SIGINT came too late"
    rekeys = _accepted_rekeys(fleet.sim)
    assert {str(k) for k in posted} >= {n for n, e in rekeys.items() if e}
    final = fleet.resume(record.run_id)
    assert _wait(final, fleet) == 0, fleet.output()
    totals = _check_final(fleet, record.run_id, exactly_one_done_transition=False)
    assert totals == {Outcome.REKEYED.value: TARGETS}
