"""Issue 15 x issue 12: the chaos invariants with SIGKILL + resume on the mixed-provider
fleet (AWS KMS, Azure Key Vault, Google Cloud KMS round-robin over the SVMs, ONTAP 9.12.1
to 9.17.1 round-robin over the clusters), for both rotations in turn on one fleet and one
ledger: `run --rekey external` killed at seeded moments and resumed to its end, then
`run --rekey internal` likewise. The invariants per operation are
`tests/chaos_matrix.py::check_operation`; `benchmarks/chaos.py --mixed` runs the same at
scale."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.core.providers import Operation
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.store import Ledger
from orchestrator.simulator.inventory_writer import PASSWORD_ENV
from tests.chaos_matrix import MixedResult, mixed_runs
from tests.engine.faulty import rewriting
from tests.simfleet import FAST, scenario, sim_fleet
from tests.simfleet import PASSWORD_ENV as SIMFLEET_PASSWORD_ENV

CLUSTERS, SVMS, KILLS = 6, 6, 2
HEALTHY = CLUSTERS - 2  # the chaos mix: c002 unreachable, c003 with the wrong password


@pytest.mark.chaos
@pytest.mark.slow
@pytest.mark.parametrize(("seed", "overlapped"), [(3, False), (6, True)])
def test_sigkill_and_resume_on_the_mixed_fleet_hold_every_invariant_per_operation(
    seed: int, overlapped: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mixed_runs` raises at the first broken invariant of an operation: a double rekey
    (two successes for one SVM and operation), a cluster's peak above `--per-cluster` or
    the fleet's above `--concurrency`, a target without exactly one terminal outcome,
    report totals unequal to the ground truth, a `rekeyed` target without exactly one
    successful rekey of the run's operation at its provider's endpoint, a rekey of the
    other operation, an internal rekey that changed a key id or version. One seed runs the
    plan first, the other discovery overlapped with the rotation (`--concurrency 8` for 6
    clusters x 4: the kills may land while later clusters are still being discovered, and
    resume must discover them), each checked against the order the run recorded."""
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    results: list[MixedResult] = list(
        mixed_runs(
            clusters=CLUSTERS,
            svms=SVMS,
            kills=KILLS,
            seed=seed,
            workdir=tmp_path,
            overlapped=overlapped,
        )
    )
    assert [r.operation for r in results] == [Operation.EXTERNAL, Operation.INTERNAL]
    for result in results:
        assert result.doubles == 0, result
        # the kills hit rotations under way: a worker may only outrun a late moment
        assert result.kills >= 1, result
        assert result.providers == {"aws": 8, "azure": 8, "gcp": 8}, result
        assert result.targets == HEALTHY * SVMS + 2, result  # + one row per skipped cluster
        assert result.outcomes.get("rekeyed", 0) >= result.targets // 2, result
    assert sum(r.kills for r in results) >= 2 * KILLS - 1, results
    assert sum(sum(r.in_flight_at_kills) for r in results) > 0, results


def _drop_each_first_post(operation: Operation) -> Callable[[httpx.Request], None]:
    """A hook that drops the first `rekey-<operation>` POST to each configuration before
    it reaches the cluster (the connection reset without an answer: the POST is uncertain
    and nothing happened)."""
    seen: set[str] = set()

    def hook(request: httpx.Request) -> None:
        path = request.url.path
        if request.method == "POST" and path.endswith(f"/rekey-{operation}") and path not in seen:
            seen.add(path)
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    return hook


@pytest.mark.anyio
@pytest.mark.parametrize("second", [Operation.INTERNAL, Operation.EXTERNAL])
async def test_a_job_of_an_earlier_run_is_never_taken_for_an_uncertain_posts_job(
    second: Operation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the mixed-fleet chaos: `run --rekey external`, then a second run whose
    POSTs are lost before they reach the cluster. Settling them, the job search (from
    300 s before the intent, for clock skew) found the first run's rekey job, which
    names the same configuration, took it for the lost POST's and ended the target
    `rekeyed` with no second rekey on the cluster: a false green. A target may end
    `rekeyed` only with a successful rekey of its own run's operation."""
    monkeypatch.setenv(SIMFLEET_PASSWORD_ENV, "netapp-sim")
    sim = sim_fleet(1, 3, scenario=scenario(), versions=("9.14.1",))
    with Ledger.open(tmp_path / "state.db") as ledger:
        first = RunRequest(sim.inventory, Selection(), FAST)
        done = await execute_run(
            first,
            Wiring(AsyncLedger(ledger), transport_factory=sim.transport(), handle_signals=False),
        )
        assert done is not None and {r.outcome for r in done.rows} == {"rekeyed"}
        before = _successes(sim.fleet.stats(), second)
        factory = rewriting(sim, hook=_drop_each_first_post(second))
        again = RunRequest(sim.inventory, Selection(), replace(FAST, rekey=second))
        result = await execute_run(
            again, Wiring(AsyncLedger(ledger), transport_factory=factory, handle_signals=False)
        )
    assert result is not None
    after = _successes(sim.fleet.stats(), second)
    outcomes = {f"{r.key.cluster}/{r.key.svm}": r.outcome for r in result.rows}
    assert len(outcomes) == 3
    for name, outcome in outcomes.items():
        new = after[name] - before[name]
        assert new <= 1, (name, new)  # never twice
        assert outcome != "rekeyed" or new == 1, (name, outcome, "no rekey on the cluster")


def _successes(truth: dict[str, Any], operation: Operation) -> Counter[str]:
    """Successful rekeys of `operation` per SVM in the ground truth."""
    return Counter(
        name
        for name, svm in truth["svms"].items()
        for r in svm["rekeys"]
        if r["operation"] == operation and r["outcome"] == "success"
    )
