"""Discovery reads the readiness facts `plan` judges; a refused readiness read does not
give up the cluster for `run` (issue 13, point 6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.inventory import ClusterSpec
from orchestrator.core.options import RunOptions
from orchestrator.core.readiness import NOT_READY_FACT
from orchestrator.core.selectors import Selection
from orchestrator.engine.plan_run import plan_targets
from tests.simfleet import Runner, SimFleet, scenario, sim_fleet

pytestmark = pytest.mark.anyio

REFUSAL = {"error": {"code": "65537915", "message": "AWS KMS is unreachable from node n1."}}


class _HealthRefused(httpx.AsyncBaseTransport):
    """ONTAP refusing the health fields of the aws-kms collection (documented GET codes)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fields = request.url.params.get("fields", "")
        if request.url.path == "/api/security/aws-kms" and "amazon_reachability" in fields:
            return httpx.Response(400, json=REFUSAL)
        return await self.inner.handle_async_request(request)


@dataclass
class _RefusingFleet(SimFleet):
    def transport(self) -> Callable[[ClusterSpec], httpx.AsyncBaseTransport]:
        inner = super().transport()
        return lambda spec: _HealthRefused(inner(spec))


def _refusing(sim: SimFleet) -> _RefusingFleet:
    return _RefusingFleet(sim.fleet, sim.app, sim.inventory)


async def test_run_rows_carry_the_plans_verdict_and_start_ready_first(run_sim: Runner) -> None:
    fault = {"kind": "amazon_unreachable", "cluster": "c001", "svm": "svm01"}
    sim = sim_fleet(2, 3, scenario=scenario(fault))
    result = await run_sim(sim, waves="1,100%", max_fail_percent=100.0)
    rows = {str(row.key): row for row in result.rows}
    assert rows["c001/svm01"].facts[NOT_READY_FACT] == "kms_unreachable"
    assert rows["c001/svm01"].wave == 2  # by name it would have been the canary
    assert all(NOT_READY_FACT not in r.facts for k, r in rows.items() if k != "c001/svm01")


async def test_a_refused_health_read_does_not_skip_the_cluster(run_sim: Runner) -> None:
    sim = _refusing(sim_fleet(1, 3))
    result = await run_sim(sim)
    assert {row.outcome for row in result.rows} == {"rekeyed"}
    assert result.exit_code is ExitCode.OK


async def test_plan_calls_a_refused_health_read_discovery_failed() -> None:
    sim = _refusing(sim_fleet(1, 2))
    rows, _ = await plan_targets(
        "plan-1", list(sim.inventory.clusters), Selection(), RunOptions(), sim.transport()
    )
    assert {(row.outcome, row.reason) for row in rows} == {("not_ready", "discovery_failed")}
    assert all("65537915" in row.facts["error"] for row in rows)
