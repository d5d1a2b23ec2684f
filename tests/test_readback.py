"""The batched read-back: one collection GET and one key-store GET per batch per cluster."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest

from orchestrator.core.errors import ErrorKind, OntapError
from orchestrator.core.targets import TargetKey
from orchestrator.engine.readback import ReadBackBatcher
from orchestrator.engine.verify import key_store_tells
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.client import OntapClient
from orchestrator.simulator.app import SimulatorApp
from orchestrator.simulator.fleet import Fleet, FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.transport import SimulatorTransport

pytestmark = pytest.mark.anyio

PASSWORD = "netapp-sim"
PORT = 20001


def simulated(svms: int, *, cluster_scope: bool = False) -> tuple[Fleet, OntapClient]:
    """One in-process simulated cluster at 9.16.1 (key stores show `state` from there on;
    older versions cost the client one fallback GET first) with 50 ms jobs, and a client."""
    spec = FleetSpec.generate(1, svms, password=PASSWORD, versions=("9.16.1",))
    if cluster_scope:
        spec = FleetSpec(
            clusters=[c.model_copy(update={"include_cluster_scope": True}) for c in spec.clusters]
        )
    scenario = Scenario.model_validate(
        {"options": {"job_duration": {"min_s": 0.05, "max_s": 0.05}}}
    )
    fleet = Fleet(spec, scenario, 3)
    fleet.bind_default(PORT - 1)
    http = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{PORT}",
        transport=SimulatorTransport(SimulatorApp(fleet)),
        auth=httpx.BasicAuth("admin", PASSWORD),
    )
    return fleet, OntapClient("c001", http)


def requests_seen(fleet: Fleet) -> Counter[str]:
    """`METHOD path` -> count, from the simulator's ground truth."""
    counts: Counter[str] = Counter()
    for entry in fleet.stats()["clusters"]["c001"]["requests"]:
        counts[f"{entry['method']} {entry['path']}"] += entry["count"]
    return counts


async def read_all(batcher: ReadBackBatcher, uuids: list[str]) -> dict[str, Any]:
    """Every uuid read concurrently; uuid -> ReadBack or the exception raised."""
    results: dict[str, Any] = {}

    async def one(uuid: str) -> None:
        try:
            results[uuid] = await batcher.read(uuid)
        except OntapError as err:
            results[uuid] = err

    async with anyio.create_task_group() as group:
        for uuid in uuids:
            group.start_soon(one, uuid)
    return results


async def test_concurrent_reads_share_one_collection_get_and_one_key_store_get() -> None:
    fleet, client = simulated(6)
    configs = await client.list_aws_kms()
    before = requests_seen(fleet)
    async with ReadBackBatcher(client, interval_s=0.2) as batcher:
        results = await read_all(batcher, [c.uuid for c in configs])
    delta = requests_seen(fleet) - before
    assert delta == Counter({"GET /api/security/aws-kms": 1, "GET /api/security/key-stores": 1})
    assert batcher.batches == 1
    for config in configs:
        got = results[config.uuid]
        assert got.config == config  # its own record, health fields included
        assert got.config.cluster_state is True
        assert got.key_store is not None
        assert got.key_store.svm_name == config.svm_name
        assert got.key_store.state == "active"
    await client.aclose()


async def test_read_back_shows_the_rekeyed_key_id() -> None:
    _fleet, client = simulated(3)
    configs = await client.list_aws_kms()
    for config in configs:
        submission = await client.rekey_external(config.uuid, "new-key", return_timeout=10)
        assert submission.job is not None
    await anyio.sleep(0.1)  # past the 50 ms jobs
    async with ReadBackBatcher(client) as batcher:
        results = await read_all(batcher, [c.uuid for c in configs])
    assert {r.config.key_id for r in results.values()} == {"new-key"}
    assert {r.key_store.state for r in results.values()} == {"active"}
    await client.aclose()


async def test_batches_are_at_least_the_interval_apart() -> None:
    _fleet, client = simulated(2)
    first, second = await client.list_aws_kms()
    async with ReadBackBatcher(client, interval_s=0.3, linger_s=0.0) as batcher:
        await batcher.read(first.uuid)
        sent_first = anyio.current_time()
        await batcher.read(second.uuid)
        assert anyio.current_time() - sent_first >= 0.3 - 0.05
    assert batcher.batches == 2
    await client.aclose()


async def test_an_unknown_uuid_is_that_callers_error_only() -> None:
    _fleet, client = simulated(2)
    configs = await client.list_aws_kms()
    async with ReadBackBatcher(client) as batcher:
        results = await read_all(batcher, [configs[0].uuid, "no-such-uuid", configs[1].uuid])
    assert batcher.batches == 1
    missing = results["no-such-uuid"]
    assert isinstance(missing, OntapError)
    assert (missing.status, missing.code, missing.kind) == (404, "4", ErrorKind.HTTP)
    assert results[configs[0].uuid].config.uuid == configs[0].uuid
    assert results[configs[1].uuid].config.uuid == configs[1].uuid
    await client.aclose()


async def test_cluster_scope_reads_every_key_store_and_picks_the_clusters_own() -> None:
    fleet, client = simulated(2, cluster_scope=True)
    configs = await client.list_aws_kms()
    assert any(c.scope == "cluster" for c in configs)
    async with ReadBackBatcher(client) as batcher:
        results = await read_all(batcher, [c.uuid for c in configs])
    for config in configs:
        store = results[config.uuid].key_store
        assert store is not None
        assert store.scope == config.scope
        if config.scope == "svm":
            assert store.svm_name == config.svm_name
    assert requests_seen(fleet)["GET /api/security/key-stores"] == 1
    await client.aclose()


async def test_more_than_max_batch_goes_out_in_several_batches() -> None:
    _fleet, client = simulated(5)
    configs = await client.list_aws_kms()
    async with ReadBackBatcher(client, interval_s=0.05, max_batch=2) as batcher:
        results = await read_all(batcher, [c.uuid for c in configs])
    assert batcher.batches == 3
    assert all(results[c.uuid].config == c for c in configs)
    await client.aclose()


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    _fleet, client = simulated(2)
    first, second = await client.list_aws_kms()
    async with ReadBackBatcher(client, interval_s=0.0, linger_s=0.2) as batcher:
        with anyio.move_on_after(0.05):
            await batcher.read(first.uuid)  # gives up before the batch leaves
        got = await batcher.read(second.uuid)
    assert got.config.uuid == second.uuid
    await client.aclose()


# -- errors on cue (MockTransport) ----------------------------------------------------


def kms(uuid: str, svm: str) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "scope": "svm",
        "svm": {"name": svm, "uuid": f"u-{svm}"},
        "key_id": "k1",
        "state": {"cluster_state": True},
    }


class FlakyCluster:
    """aws-kms answers 503 (ONTAP's error body) the first `failures` times, then records."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.queries: list[httpx.QueryParams] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.queries.append(request.url.params)
        if request.url.path == "/api/security/aws-kms":
            if self.failures:
                self.failures -= 1
                body = {"error": {"code": "2", "message": "busy"}}
                return httpx.Response(503, json=body, headers={"Retry-After": "1"})
            uuids = request.url.params["uuid"].split("|")
            return httpx.Response(200, json={"records": [kms(u, f"s-{u}") for u in uuids]})
        svms = request.url.params["svm.name"].split("|")
        stores = [
            {"uuid": f"ks-{s}", "svm": {"name": s}, "type": "aws", "state": "active"} for s in svms
        ]
        return httpx.Response(200, content=json.dumps({"records": stores}))


def mock_client(handler: FlakyCluster) -> OntapClient:
    http = httpx.AsyncClient(
        base_url="https://c1.example.com", transport=httpx.MockTransport(handler)
    )
    return OntapClient("c1", http)


async def test_an_error_of_the_batch_is_every_callers_error_and_the_next_batch_recovers() -> None:
    cluster = FlakyCluster(failures=1)
    client = mock_client(cluster)
    async with ReadBackBatcher(client, interval_s=0.0) as batcher:
        failed = await read_all(batcher, ["a", "b", "c"])
        assert all(isinstance(e, OntapError) and e.status == 503 for e in failed.values())
        assert len({id(e) for e in failed.values()}) == 3  # each caller its own error object
        assert all(e.retry_after == 1.0 for e in failed.values())
        again = await read_all(batcher, ["a", "b", "c"])
    assert {u: r.key_store.svm_name for u, r in again.items()} == {
        "a": "s-a",
        "b": "s-b",
        "c": "s-c",
    }
    assert cluster.queries[0]["uuid"] == "a|b|c"
    assert cluster.queries[-1]["svm.name"] == "s-a|s-b|s-c"
    assert "key_id" in cluster.queries[0]["fields"].split(",")
    assert "state" in cluster.queries[0]["fields"].split(",")


async def test_read_outside_the_context_manager_is_refused() -> None:
    client = mock_client(FlakyCluster(failures=0))
    with pytest.raises(RuntimeError, match="async with"):
        await ReadBackBatcher(client).read("a")


async def test_a_caller_waiting_when_the_batcher_closes_gets_an_error() -> None:
    client = mock_client(FlakyCluster(failures=0))
    outcome: list[BaseException] = []

    async def reader(batcher: ReadBackBatcher) -> None:
        try:
            await batcher.read("a")
        except OntapError as err:
            outcome.append(err)

    async with (
        anyio.create_task_group() as group,
        ReadBackBatcher(client, linger_s=30.0) as batcher,
    ):
        group.start_soon(reader, batcher)
        await anyio.sleep(0.05)
    assert len(outcome) == 1
    assert "closed" in str(outcome[0])


async def test_a_busy_cluster_holds_the_batch_until_it_goes_quiet() -> None:
    """Reads that arrive while the cluster is busy wait for each other (one batch, no
    interval expiring in between), and `wake()` sends the batch at once."""
    _, client = simulated(4)
    configs = await client.list_aws_kms()
    busy = True
    async with ReadBackBatcher(
        client, interval_s=0.0, linger_s=0.0, busy=lambda: busy, busy_wait_s=60.0
    ) as batcher:
        results: dict[str, Any] = {}

        async def one(uuid: str) -> None:
            results[uuid] = await batcher.read(uuid, key_store=False)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for config in configs:
                    group.start_soon(one, config.uuid)
                    await anyio.sleep(0.05)
                assert batcher.batches == 0  # all of them wait for the busy cluster
                busy = False
                batcher.wake()
    assert batcher.batches == 1
    assert set(results) == {c.uuid for c in configs}
    assert all(r.key_store is None for r in results.values())  # not asked for: not read
    await client.aclose()


async def test_without_a_key_store_reader_the_batch_is_one_get() -> None:
    fleet, client = simulated(3)
    configs = await client.list_aws_kms()
    before = requests_seen(fleet)
    async with ReadBackBatcher(client) as batcher, anyio.create_task_group() as group:
        for config in configs:
            group.start_soon(lambda u=config.uuid: batcher.read(u, key_store=False))
    assert requests_seen(fleet) - before == Counter({"GET /api/security/aws-kms": 1})
    await client.aclose()


@pytest.mark.parametrize(
    ("version", "reads"),
    [
        ("NetApp Release 9.14.1: simulated", False),
        ("9.15.1P7", False),
        ("9.16.1", True),
        ("NetApp Release 9.17.1: Mon", True),
        (None, True),  # unknown: read it, never skip what might tell
        ("garbled", True),
    ],
)
def test_the_key_store_is_read_only_where_its_state_exists(
    version: str | None, reads: bool
) -> None:
    facts = {} if version is None else {"version": version}
    row = TargetRow(run_id="r", key=TargetKey("c001", "svm01"), facts=facts)
    assert key_store_tells(row) is reads


async def test_a_batch_waits_for_the_rekeys_in_flight_when_it_opened() -> None:
    """A read-back arriving while other rekeys of its cluster are in flight waits for them
    (their read-backs join the batch: one GET), not for rekeys that start later."""
    _, client = simulated(3)
    first, second, third = await client.list_aws_kms()
    sibling, newcomer = object(), object()
    rekeying: set[object] = {sibling}
    async with ReadBackBatcher(
        client, interval_s=0.0, linger_s=0.0, in_flight=lambda: rekeying, in_flight_wait_s=60.0
    ) as batcher:
        results: dict[str, Any] = {}

        async def one(uuid: str) -> None:
            results[uuid] = await batcher.read(uuid, key_store=False)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(one, first.uuid)
                await anyio.sleep(0.1)
                rekeying.add(newcomer)  # started after the batch opened: not waited for
                group.start_soon(one, second.uuid)
                await anyio.sleep(0.1)
                assert batcher.batches == 0  # the sibling's rekey is still in flight
                rekeying.discard(sibling)  # its job ended: it reads back now
                group.start_soon(one, third.uuid)
                batcher.wake()
    assert batcher.batches == 1
    assert set(results) == {first.uuid, second.uuid, third.uuid}
    await client.aclose()


async def test_the_wait_for_rekeys_in_flight_is_bounded() -> None:
    """A rekey in flight that never ends holds a batch no longer than `in_flight_wait_s`."""
    _, client = simulated(1)
    (config,) = await client.list_aws_kms()
    stuck = {object()}
    async with ReadBackBatcher(
        client, interval_s=0.0, linger_s=0.0, in_flight=lambda: stuck, in_flight_wait_s=0.3
    ) as batcher:
        started = anyio.current_time()
        with anyio.fail_after(30):
            got = await batcher.read(config.uuid, key_store=False)
        assert anyio.current_time() - started >= 0.3 - 0.05
    assert got.config.uuid == config.uuid
    assert batcher.batches == 1
    await client.aclose()
