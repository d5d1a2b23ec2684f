"""Issue 15 x issue 12: the chaos invariants with SIGKILL + resume on the mixed-provider
fleet (AWS KMS, Azure Key Vault, Google Cloud KMS round-robin over the SVMs, ONTAP 9.12.1
to 9.17.1 round-robin over the clusters), for both rotations in turn on one fleet and one
ledger: `run --rekey external` killed at seeded moments and resumed to its end, then
`run --rekey internal` likewise. The invariants per operation are
`tests/chaos_matrix.py::check_operation`; `benchmarks/chaos.py --mixed` runs the same at
scale."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.core.providers import Operation
from orchestrator.simulator.inventory_writer import PASSWORD_ENV
from tests.chaos_matrix import MixedResult, mixed_runs

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

CLUSTERS, SVMS, KILLS = 6, 6, 2
HEALTHY = CLUSTERS - 2  # the chaos mix: c002 unreachable, c003 with the wrong password


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_and_resume_on_the_mixed_fleet_hold_every_invariant_per_operation(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mixed_runs` raises at the first broken invariant of an operation: a double rekey
    (two successes for one SVM and operation), a cluster's peak above `--per-cluster` or
    the fleet's above `--concurrency`, a target without exactly one terminal outcome,
    report totals unequal to the ground truth, a `rekeyed` target without exactly one
    successful rekey of the run's operation at its provider's endpoint, a rekey of the
    other operation, an internal rekey that changed a key id or version."""
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    results: list[MixedResult] = list(
        mixed_runs(clusters=CLUSTERS, svms=SVMS, kills=KILLS, seed=seed, workdir=tmp_path)
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
