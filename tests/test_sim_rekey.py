"""rekey-external and jobs: body validation, 200/201/202, busy, key changes, job expiry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orchestrator.simulator import Fleet, FleetSpec, Scenario, SimulatorApp
from orchestrator.simulator.fleet import peak_overlap
from tests.simfleet import FakeClock, sim_client

BASE = "http://127.0.0.1:20001"
REKEY = "/api/security/aws-kms/{}/rekey-external"


def _fleet(scenario: str = "", svms: int = 2, version: str = "9.14.1") -> Fleet:
    spec = FleetSpec.generate(1, svms, versions=[version])
    fleet = Fleet(spec, Scenario.from_yaml(scenario), seed=3)
    fleet.bind_default()
    return fleet


def _options(**options: object) -> str:
    pairs = ", ".join(f"{k}: {v}" for k, v in options.items())
    return f"options: {{job_duration: {{min_s: 0.001, max_s: 0.001}}, {pairs}}}"


async def _first_uuid(client: httpx.AsyncClient) -> str:
    return str((await client.get("/api/security/aws-kms")).json()["records"][0]["uuid"])


@pytest.mark.parametrize(
    ("body", "code", "target"),
    [
        (b"{}", "262177", "key_id"),  # missing value
        (b'{"key_id": ""}', "262197", "key_id"),  # invalid value
        (b'{"key_id": 5}', "262197", "key_id"),
        (b'{"key_id": "k", "extra": 1}', "262179", "extra"),  # unexpected argument
        (b'{"key_id": "k", "svm": {"name": "svm01"}}', "262179", "svm"),  # 9.12/9.13 only
        (b'{"key_id": ', "262199", None),  # invalid JSON
        (b'["key_id"]', "262201", None),  # JSON, but not an object
    ],
)
@pytest.mark.anyio
async def test_rekey_body_is_validated(body: bytes, code: str, target: str | None) -> None:
    """Each body mistake gets ONTAP's documented code (ontap-rest-notes.md section 6)."""
    async with sim_client(SimulatorApp(_fleet())) as client:
        uuid = await _first_uuid(client)
        response = await client.post(REKEY.format(uuid), content=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert response.json()["error"].get("target") == target


@pytest.mark.anyio
async def test_rekey_that_finishes_in_time_answers_201_with_the_job() -> None:
    fleet = _fleet(_options(job_expiry_s=300))
    async with sim_client(SimulatorApp(fleet)) as client:
        uuid = await _first_uuid(client)
        response = await client.post(
            REKEY.format(uuid), params={"return_timeout": 5}, json={"key_id": "new-key"}
        )
        record = (await client.get(f"/api/security/aws-kms/{uuid}")).json()
    assert response.status_code == 201
    job = response.json()["job"]
    assert job["state"] == "success"
    assert job["end_time"]
    assert job["description"] == f"POST /api/security/aws-kms/{uuid}/rekey-external"
    assert record["key_id"] == "new-key"
    svm = fleet.stats()["svms"]["c001/svm01"]
    assert svm["key_version"] == 2
    assert svm["rekeys"] == [
        {
            "time": job["start_time"],
            "key_id": "new-key",
            "job_uuid": job["uuid"],
            "outcome": "success",
            "provider": "aws",
            "operation": "external",
            "status": 201,
        }
    ]


@pytest.mark.anyio
async def test_rekey_can_answer_200_instead_of_201() -> None:
    fleet = _fleet(_options(rekey_finished_status=200))
    async with sim_client(SimulatorApp(fleet)) as client:
        uuid = await _first_uuid(client)
        response = await client.post(
            REKEY.format(uuid), params={"return_timeout": 5}, json={"key_id": "k"}
        )
    assert response.status_code == 200
    assert response.json()["job"]["state"] == "success"


@pytest.mark.anyio
async def test_slow_job_answers_202_then_runs_to_success_and_expires() -> None:
    clock = FakeClock()
    options = "options: {job_duration: {min_s: 10, max_s: 10}, job_expiry_s: 300}"
    fleet = _fleet(options, version="9.16.1")  # the key store's state exists from 9.16.1
    app = SimulatorApp(fleet, clock=clock)
    async with sim_client(app) as client:
        uuid = await _first_uuid(client)
        current = (await client.get(f"/api/security/aws-kms/{uuid}")).json()["key_id"]
        posted = await client.post(
            REKEY.format(uuid), params={"return_timeout": 0}, json={"key_id": current}
        )
        assert posted.status_code == 202
        href = posted.json()["job"]["_links"]["self"]["href"]
        assert (await client.get(href)).json()["state"] == "queued"
        clock.now += 5
        assert (await client.get(href)).json()["state"] == "running"
        stores = await client.get("/api/security/key-stores", params={"fields": "state"})
        assert stores.json()["records"][0]["state"] == "svm_kek_rekey"
        clock.now += 5
        done = (await client.get(href)).json()
        assert done["state"] == "success"
        assert done["code"] == 0
        clock.now += 299
        assert (await client.get(href)).status_code == 200
        clock.now += 1
        expired = await client.get(href)
    assert expired.status_code == 404
    assert expired.json()["error"]["code"] == "4"
    svm = fleet.stats()["svms"]["c001/svm01"]
    assert svm["key_id"] == current
    assert svm["key_version"] == 2


@pytest.mark.anyio
async def test_second_rekey_while_one_runs_is_409_code_8() -> None:
    clock = FakeClock()
    fleet = _fleet("options: {job_duration: {min_s: 10, max_s: 10}}")
    async with sim_client(SimulatorApp(fleet, clock=clock)) as client:
        uuid = await _first_uuid(client)
        first = await client.post(
            REKEY.format(uuid), params={"return_timeout": 0}, json={"key_id": "a"}
        )
        second = await client.post(
            REKEY.format(uuid), params={"return_timeout": 0}, json={"key_id": "b"}
        )
        clock.now += 11
        third = await client.post(
            REKEY.format(uuid), params={"return_timeout": 0}, json={"key_id": "c"}
        )
    assert (first.status_code, second.status_code, third.status_code) == (202, 409, 202)
    assert second.json()["error"]["code"] == "8"
    stats = fleet.stats()
    assert [r["key_id"] for r in stats["svms"]["c001/svm01"]["rekeys"]] == ["a", "c"]
    assert stats["clusters"]["c001"]["peak_concurrent_rekeys"] == 1


@pytest.mark.anyio
async def test_jobs_collection_filters_on_description_state_and_svm() -> None:
    clock = FakeClock()
    fleet = _fleet("options: {job_duration: {min_s: 10, max_s: 10}}", svms=3)
    async with sim_client(SimulatorApp(fleet, clock=clock)) as client:
        records = (await client.get("/api/security/aws-kms")).json()["records"]
        for record in records[:2]:
            await client.post(
                REKEY.format(record["uuid"]), params={"return_timeout": 0}, json={"key_id": "k"}
            )
        query = {"description": "POST /api/security/aws-kms/*", "fields": "state,svm.name"}
        found = (await client.get("/api/cluster/jobs", params=query)).json()
        by_svm = await client.get("/api/cluster/jobs", params={"svm.name": "svm02"})
        running = await client.get("/api/cluster/jobs", params={"state": "running|queued"})
        paged = await client.get("/api/cluster/jobs", params={"max_records": 1})
    assert found["num_records"] == 2
    assert {r["svm"]["name"] for r in found["records"]} == {"svm01", "svm02"}
    assert by_svm.json()["num_records"] == 1
    assert running.json()["num_records"] == 2
    assert "next" in paged.json()["_links"]


@pytest.mark.anyio
async def test_return_timeout_is_validated() -> None:
    async with sim_client(SimulatorApp(_fleet())) as client:
        uuid = await _first_uuid(client)
        response = await client.post(
            REKEY.format(uuid), params={"return_timeout": "soon"}, json={"key_id": "k"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["target"] == "return_timeout"


async def _three_overlapping_rekeys() -> dict[str, Any]:
    """Three 10 s rekey jobs on one cluster, started at once: the ground truth after."""
    clock = FakeClock()
    fleet = _fleet("options: {job_duration: {min_s: 10, max_s: 10}}", svms=3)
    async with sim_client(SimulatorApp(fleet, clock=clock)) as client:
        for record in (await client.get("/api/security/aws-kms")).json()["records"]:
            await client.post(
                REKEY.format(record["uuid"]), params={"return_timeout": 0}, json={"key_id": "k"}
            )
    return fleet.stats()


@pytest.mark.anyio
async def test_peak_concurrent_rekeys_counts_overlapping_jobs() -> None:
    stats = await _three_overlapping_rekeys()
    assert stats["clusters"]["c001"]["peak_concurrent_rekeys"] == 3


@pytest.mark.anyio
async def test_the_ground_truth_carries_every_rekey_jobs_span() -> None:
    """`rekey_spans`: one (start, end) per rekey job on the simulator's clock, from which a
    fleet sharded over processes computes its fleet-wide peak (benchmarks/harness.py)."""
    stats = await _three_overlapping_rekeys()
    spans = stats["rekey_spans"]
    assert len(spans) == 3
    assert all(end - start == pytest.approx(10) for start, end in spans)
    assert peak_overlap(spans) == stats["fleet"]["peak_concurrent_rekeys"] == 3
