"""Overlapped discovery (issue 16): each cluster's targets start as it is discovered.

A slow cluster (every request 0.15 s late) holds the others back only when the run plans
first; overlapped, the fast clusters' POSTs come before its rows exist. Either way every
target is rekeyed once, every row is in the ledger, and a run cut off while a cluster is
still being discovered is finished by `resume`, which discovers that cluster.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import anyio
import httpx
import pytest

from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import AbortReason, Outcome, TargetState
from orchestrator.engine.pool import TransportFactory
from orchestrator.engine.runner import RunRequest, Wiring, execute_run, resume_run
from orchestrator.errors import UserError
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import RunStatus
from orchestrator.ledger.store import Ledger
from tests.ledger_factories import integrity_problems
from tests.simfleet import FAST, SimFleet, scenario, sim_fleet

pytestmark = pytest.mark.anyio

SLOW = "c003"
CLUSTERS, SVMS = 3, 4


def _fleet(*faults: dict[str, object]) -> SimFleet:
    slow = {"kind": "latency", "cluster": SLOW, "min_s": 0.15, "max_s": 0.15}
    jobs = {"min_s": 0.01, "max_s": 0.02}
    return sim_fleet(CLUSTERS, SVMS, scenario=scenario(slow, *faults, job_duration=jobs))


def _options(overlap: bool, **more: object) -> RunOptions:
    """Per cluster 2, in all 4: the clusters' limits (6) exceed the global one, so the
    clusters take lanes (all 3 at once) and an overlapped run overlaps."""
    more = {"per_cluster": 2, "concurrency": 4, **more}
    return replace(FAST, overlap_discovery=overlap, **more)  # type: ignore[arg-type]


def _wiring(
    ledger: Ledger, sim: SimFleet, answers: list[str] | None = None, **more: object
) -> Wiring:
    """The run's wiring on `sim`; with `answers`, each answer noted there (`_noted`)."""
    factory = sim.transport() if answers is None else _noted(sim, answers)
    return Wiring(
        AsyncLedger(ledger),
        transport_factory=factory,
        handle_signals=False,
        **more,  # type: ignore[arg-type]
    )


class _Answered(httpx.AsyncBaseTransport):
    """The simulator's transport, noting each answer in the order the client gets them."""

    def __init__(self, inner: httpx.AsyncBaseTransport, cluster: str, log: list[str]) -> None:
        self._inner, self._cluster, self._log = inner, cluster, log

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self._log.append(f"{self._cluster} {request.method}")
        return response


def _noted(sim: SimFleet, log: list[str]) -> TransportFactory:
    factory = sim.transport()
    return lambda spec: _Answered(factory(spec), spec.name, log)


def _posted_before_discovered(answers: list[str], cluster: str = SLOW) -> bool:
    """Was a rekey POST answered before `cluster`'s discovery (its GETs before its first
    POST) was?"""
    first_post = answers.index(f"{cluster} POST")
    discovered = max(i for i in range(first_post) if answers[i] == f"{cluster} GET")
    return any(answer.endswith(" POST") for answer in answers[:discovered])


@pytest.mark.parametrize("overlap", [True, False])
async def test_overlapped_posts_before_the_slow_cluster_is_discovered(
    tmp_path: Path, overlap: bool
) -> None:
    sim = _fleet()
    seen: list[str] = []
    answers: list[str] = []
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = _wiring(ledger, sim, answers, cluster_seen=lambda name, rows: seen.append(name))
        request = RunRequest(sim.inventory, Selection(), _options(overlap))
        result = await execute_run(request, wiring)
        assert result is not None and result.exit_code is ExitCode.OK
        run_id = result.run.run_id
        assert _posted_before_discovered(answers) is overlap
        rows = ledger.targets(run_id)
        assert ledger.get_run(run_id).options["overlap_discovery"] is overlap
    assert len(rows) == CLUSTERS * SVMS
    assert {row.outcome for row in rows} == {Outcome.REKEYED.value}
    assert {row.outcome for row in result.rows} == {Outcome.REKEYED.value}
    assert set(sim.rekeys().values()) == {1}
    # each cluster's summary line as it is discovered, the slow one last (overlapped only)
    assert seen == (["c001", "c002", SLOW] if overlap else [])


async def test_cut_off_while_a_cluster_is_discovered_resume_discovers_it(tmp_path: Path) -> None:
    """Cancelled once the fast clusters are rotating and the slow one has no rows yet:
    the run is `interrupted` with rows of the fast clusters only; `resume` discovers the
    slow one, and every target of the three ends rekeyed, once."""
    sim = _fleet()
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = _wiring(ledger, sim)
        request = RunRequest(sim.inventory, Selection(), _options(True))
        with anyio.move_on_after(0.3):  # the slow cluster's 5 GETs take 0.75 s
            await execute_run(request, wiring)
        (run,) = ledger.list_runs()
        assert run.status is RunStatus.INTERRUPTED
        assert {row.key.cluster for row in ledger.targets(run.run_id)} == {"c001", "c002"}
        assert integrity_problems(ledger.path) == []
        result = await resume_run(run, request, wiring)
        rows = ledger.targets(run.run_id)
    assert result.exit_code is ExitCode.OK
    assert len(rows) == CLUSTERS * SVMS
    assert {row.key.cluster for row in rows} == {"c001", "c002", SLOW}
    assert all(row.state is TargetState.DONE for row in rows)
    assert {row.outcome for row in rows} == {Outcome.REKEYED.value}
    assert set(sim.rekeys().values()) == {1}


async def test_a_stop_while_discovering_still_records_every_target(tmp_path: Path) -> None:
    """Fail-fast trips on a fast cluster's fatal error before the slow cluster answers:
    the slow cluster's targets are still recorded, and end `aborted` (none lost, none
    sent), and the run is `aborted` (never green)."""
    fatal = {"kind": "unwrap_key_failed", "cluster": "c001", "svm": "svm01"}
    sim = _fleet(fatal)
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = _wiring(ledger, sim)
        request = RunRequest(sim.inventory, Selection(), _options(True, fail_fast=True))
        result = await execute_run(request, wiring)
        assert result is not None
        rows = ledger.targets(result.run.run_id)
    assert result.stop_reason is AbortReason.FAIL_FAST
    assert result.run.status is RunStatus.ABORTED
    assert result.exit_code is not ExitCode.OK
    assert len(rows) == CLUSTERS * SVMS
    slow = [row for row in rows if row.key.cluster == SLOW]
    assert {row.outcome for row in slow} == {Outcome.ABORTED.value}
    assert not any(sim.rekeys()[f"{SLOW}/{row.key.svm}"] for row in slow)


async def test_no_target_at_all_is_a_usage_error_and_records_no_run(tmp_path: Path) -> None:
    sim = _fleet()
    nothing = Selection(exclude_svms=("*",))
    with Ledger.open(tmp_path / "state.db") as ledger:
        request = RunRequest(sim.inventory, nothing, _options(True))
        with pytest.raises(UserError, match="matches no target"):
            await execute_run(request, _wiring(ledger, sim))
        assert ledger.list_runs() == []
    assert set(sim.rekeys().values()) <= {0}


@pytest.mark.parametrize("grace_s", [0.05, 30.0])
async def test_a_cluster_slow_to_discover_steps_aside_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grace_s: float
) -> None:
    """One place to discover in, the first cluster slow (0.75 s): after the grace it gives
    its place up and the others are discovered and rekeyed meanwhile; with a grace longer
    than its discovery they wait for it."""
    from orchestrator.engine import discovering

    monkeypatch.setattr(discovering, "STREAM_WIDTH", 1)
    monkeypatch.setattr(discovering, "STREAM_GRACE_S", grace_s)
    slow = {"kind": "latency", "cluster": "c001", "min_s": 0.15, "max_s": 0.15}
    jobs = {"min_s": 0.01, "max_s": 0.02}
    sim = sim_fleet(CLUSTERS, SVMS, scenario=scenario(slow, job_duration=jobs))
    answers: list[str] = []
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = _wiring(ledger, sim, answers)
        result = await execute_run(RunRequest(sim.inventory, Selection(), _options(True)), wiring)
    assert result is not None and result.exit_code is ExitCode.OK
    assert _posted_before_discovered(answers, "c001") is (grace_s < 0.75)
    assert set(sim.rekeys().values()) == {1}


def _most_discovered_ahead(answers: list[str]) -> int:
    """The most clusters at any moment discovered (their GETs before their first POST all
    answered) whose first POST was not answered yet."""
    first_post: dict[str, int] = {}
    for i, answer in enumerate(answers):
        cluster, method = answer.split()
        if method == "POST":
            first_post.setdefault(cluster, i)
    discovered = {
        cluster: max(i for i in range(post) if answers[i] == f"{cluster} GET")
        for cluster, post in first_post.items()
    }
    ahead = 0
    for i in range(len(answers)):
        ready = sum(1 for at in discovered.values() if at <= i)
        posted = sum(1 for at in first_post.values() if at <= i)
        ahead = max(ahead, ready - posted)
    return ahead


@pytest.mark.parametrize("overlap", [True, False])
async def test_discovery_keeps_only_the_lanes_worth_of_clusters_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overlap: bool
) -> None:
    """12 clusters of 10 SVMs under `--concurrency 2` (2 lanes of clusters; a lane is
    held until all but a cluster's last 4 targets have started): overlapped, discovery
    runs only as far ahead as the lanes and one place allow: 3 clusters waiting for a
    lane, and the 2 in the lanes whose first POST may wait for the global slots (5 in
    all); planning first discovers all 12 before the first POST."""
    from orchestrator.engine import discovering

    monkeypatch.setattr(discovering, "STREAM_WIDTH", 1)
    jobs = {"min_s": 0.005, "max_s": 0.01}
    sim = sim_fleet(12, 10, scenario=scenario(job_duration=jobs))
    answers: list[str] = []
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = _wiring(ledger, sim, answers)
        options = _options(overlap, concurrency=2)
        result = await execute_run(RunRequest(sim.inventory, Selection(), options), wiring)
    assert result is not None and result.exit_code is ExitCode.OK
    assert _most_discovered_ahead(answers) <= (2 + 1 + 2 if overlap else 12)
    assert _most_discovered_ahead(answers) >= (1 if overlap else 11)
    assert set(sim.rekeys().values()) == {1}


async def test_without_lanes_an_overlapped_run_plans_first_and_says_so(tmp_path: Path) -> None:
    """The clusters' limits (6) within the global one (64): every cluster would start at
    once, so the run plans first, and its stored options say it did not overlap (its
    resume then has nothing to discover)."""
    sim = _fleet()
    answers: list[str] = []
    with Ledger.open(tmp_path / "state.db") as ledger:
        wiring = _wiring(ledger, sim, answers)
        options = _options(True, concurrency=64)
        result = await execute_run(RunRequest(sim.inventory, Selection(), options), wiring)
        assert result is not None and result.exit_code is ExitCode.OK
        assert ledger.get_run(result.run.run_id).options["overlap_discovery"] is False
    assert _posted_before_discovered(answers) is False
    assert set(sim.rekeys().values()) == {1}
