"""The scenario switches for what ONTAP's documentation leaves unconfirmed: every value
of every switch, shown on the wire and in the ground truth."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from orchestrator.simulator import Fleet, FleetSpec, Scenario, SimulatorApp
from tests.simfleet import FakeClock, sim_client

BASE = "http://127.0.0.1:20001"
REKEY = "/api/security/aws-kms/{}/rekey-external"


def _app(options: str = "", *, duration: float = 0.001, clock: Any = None) -> SimulatorApp:
    extra = f", {options}" if options else ""
    text = f"options: {{job_duration: {{min_s: {duration}, max_s: {duration}}}{extra}}}"
    fleet = Fleet(FleetSpec.generate(1, 2), Scenario.from_yaml(text), seed=5)
    fleet.bind_default()
    return SimulatorApp(fleet, clock=clock)


async def _uuid(client: httpx.AsyncClient) -> str:
    return str((await client.get("/api/security/aws-kms")).json()["records"][0]["uuid"])


async def _rekey(
    client: httpx.AsyncClient, uuid: str, key_id: str = "k2", wait: int | None = 5
) -> httpx.Response:
    params = {} if wait is None else {"return_timeout": wait}
    return await client.post(REKEY.format(uuid), params=params, json={"key_id": key_id})


def _rekeys(app: SimulatorApp) -> list[dict[str, Any]]:
    return list(app.fleet.stats()["svms"]["c001/svm01"]["rekeys"])


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("", "POST /api/security/aws-kms/{uuid}/rekey-external"),  # the default guess
        ("job_description: ''", None),  # no description at all
        ("job_description: 'rekey-external {uuid} (AWS KMS)'", "rekey-external {uuid} (AWS KMS)"),
    ],
)
@pytest.mark.anyio
async def test_job_description(option: str, expected: str | None) -> None:
    app = _app(option)
    async with sim_client(app) as client:
        uuid = await _uuid(client)
        job = (await _rekey(client, uuid)).json()["job"]
        listed = (await client.get("/api/cluster/jobs", params={"fields": "description"})).json()
    want = None if expected is None else expected.replace("{uuid}", uuid)
    assert job.get("description") == want
    assert listed["records"][0].get("description") == want


@pytest.mark.parametrize(
    ("option", "keys"),
    [
        ("", {"uuid", "description", "state", "message", "code", "start_time", "end_time"}),
        ("rekey_finished_body: job", {"uuid", "state", "code", "end_time"}),
        ("rekey_finished_body: job_uuid", {"uuid", "_links"}),
        ("rekey_finished_body: empty", None),
    ],
)
@pytest.mark.anyio
async def test_rekey_finished_body(option: str, keys: set[str] | None) -> None:
    """What a 201 carries: the full job record (default), only its uuid and link, or {}."""
    app = _app(option)
    async with sim_client(app) as client:
        response = await _rekey(client, await _uuid(client))
    assert response.status_code == 201
    if keys is None:
        assert response.json() == {}
    elif keys == {"uuid", "_links"}:
        assert set(response.json()["job"]) == keys
    else:
        assert keys <= set(response.json()["job"])
    assert [r["outcome"] for r in _rekeys(app)] == ["success"]


@pytest.mark.parametrize(
    ("option", "status"),
    [("", 201), ("post_return_timeout_default: 1", 201), ("post_return_timeout_default: 0", 202)],
)
@pytest.mark.anyio
async def test_post_return_timeout_default(option: str, status: int) -> None:
    """A POST without return_timeout waits 1 s by default (0 with the switch) for a job of
    0.05 s: 201 when it waits, 202 when it does not."""
    app = _app(option, duration=0.05)
    async with sim_client(app) as client:
        response = await _rekey(client, await _uuid(client), wait=None)
    assert response.status_code == status


@pytest.mark.anyio
async def test_busy_rekey_conflict_is_the_default() -> None:
    clock = FakeClock()
    app = _app("busy_rekey: conflict", duration=10, clock=clock)
    async with sim_client(app) as client:
        uuid = await _uuid(client)
        first = await _rekey(client, uuid, "a", wait=0)
        second = await _rekey(client, uuid, "b", wait=0)
    assert (first.status_code, second.status_code) == (202, 409)
    assert second.json()["error"]["code"] == "8"
    assert [r["key_id"] for r in _rekeys(app)] == ["a"]


@pytest.mark.anyio
async def test_busy_rekey_queue_accepts_and_waits_for_the_running_job() -> None:
    """`queue`: the second rekey is accepted; its job stays queued until the first ended,
    then runs; the key id ends as the second one asked."""
    clock = FakeClock()
    app = _app("busy_rekey: queue", duration=10, clock=clock)
    async with sim_client(app) as client:
        uuid = await _uuid(client)
        first = await _rekey(client, uuid, "a", wait=0)
        second = await _rekey(client, uuid, "b", wait=0)
        href = second.json()["job"]["_links"]["self"]["href"]
        clock.now += 5
        states = [(await client.get(href)).json()["state"]]
        clock.now += 6  # the first ended at +10; the second runs from there
        states.append((await client.get(href)).json()["state"])
        clock.now += 10
        states.append((await client.get(href)).json()["state"])
        key_id = (await client.get(f"/api/security/aws-kms/{uuid}")).json()["key_id"]
    assert (first.status_code, second.status_code) == (202, 202)
    assert states == ["queued", "running", "success"]
    assert key_id == "b"
    truth = app.fleet.stats()
    assert [(r["key_id"], r["outcome"]) for r in _rekeys(app)] == [
        ("a", "success"),
        ("b", "success"),
    ]
    assert truth["svms"]["c001/svm01"]["key_version"] == 3
    assert truth["clusters"]["c001"]["peak_concurrent_rekeys"] == 1


@pytest.mark.anyio
async def test_busy_rekey_queue_key_store_shows_the_rekey_while_the_first_runs() -> None:
    """9.16.1: while the first job runs and the second waits, the key store is
    `svm_kek_rekey`; once both ended, `active`."""
    clock = FakeClock()
    text = "options: {job_duration: {min_s: 10, max_s: 10}, busy_rekey: queue}"
    fleet = Fleet(FleetSpec.generate(1, 1, versions=["9.16.1"]), Scenario.from_yaml(text))
    fleet.bind_default()
    app = SimulatorApp(fleet, clock=clock)
    async with sim_client(app) as client:
        uuid = await _uuid(client)
        await _rekey(client, uuid, "a", wait=0)
        await _rekey(client, uuid, "b", wait=0)
        states = []
        for step in (5, 10, 10):  # +5 first runs, +15 second runs, +25 both ended
            clock.now += step
            body = (await client.get(f"/api/security/key-stores/{uuid}")).json()
            states.append(body["state"])
    assert states == ["svm_kek_rekey", "svm_kek_rekey", "active"]


@pytest.mark.parametrize("expiry", [0, 2, 300])
@pytest.mark.anyio
async def test_job_expiry_s_takes_any_value(expiry: int) -> None:
    clock = FakeClock()
    app = _app(f"job_expiry_s: {expiry}", duration=1, clock=clock)
    async with sim_client(app) as client:
        posted = await _rekey(client, await _uuid(client), wait=0)
        href = posted.json()["job"]["_links"]["self"]["href"]
        clock.now += 1 + max(expiry - 0.5, 0.5)  # the job ended at +1
        before = (await client.get(href)).status_code
        clock.now += 1
        after = (await client.get(href)).status_code
    assert (before, after) == ((200 if expiry else 404), 404)


@pytest.mark.parametrize("status", [200, 201])
@pytest.mark.anyio
async def test_rekey_finished_status(status: int) -> None:
    app = _app(f"rekey_finished_status: {status}")
    async with sim_client(app) as client:
        response = await _rekey(client, await _uuid(client))
    assert response.status_code == status


@pytest.mark.anyio
async def test_paused_fraction_shows_a_paused_job_that_goes_on() -> None:
    clock = FakeClock()
    app = _app("paused_fraction: 0.4", duration=10, clock=clock)
    async with sim_client(app) as client:
        href = (await _rekey(client, await _uuid(client), wait=0)).json()["job"]["_links"]
        url = href["self"]["href"]
        states = []
        for step in (2, 3, 3, 3):  # +2 running, +5 paused (middle), +8 running, +11 done
            clock.now += step
            states.append((await client.get(url)).json()["state"])
    assert states == ["running", "paused", "running", "success"]


@pytest.mark.parametrize("code", [0, 65537919])
@pytest.mark.anyio
async def test_running_job_code(code: int) -> None:
    """A running job may carry a non-zero code (ONTAP's docs); a finished one says 0."""
    clock = FakeClock()
    app = _app(f"running_job_code: {code}", duration=10, clock=clock)
    async with sim_client(app) as client:
        url = (await _rekey(client, await _uuid(client), wait=0)).json()["job"]["_links"]
        href = url["self"]["href"]
        clock.now += 5
        running = (await client.get(href)).json()
        clock.now += 6
        done = (await client.get(href)).json()
    assert (running["state"], running["code"]) == ("running", code)
    assert (done["state"], done["code"]) == ("success", 0)


@pytest.mark.anyio
async def test_a_dropped_answer_is_status_0_in_the_ground_truth() -> None:
    text = "options: {job_duration: {min_s: 0.001, max_s: 0.001}}\n"
    text += "faults: [{kind: drop_after, rate: 1.0}]"
    fleet = Fleet(FleetSpec.generate(1, 1), Scenario.from_yaml(text), seed=1)
    fleet.bind_default()
    app = SimulatorApp(fleet)
    async with sim_client(app) as client:
        uuid = await _uuid(client)
        with pytest.raises(httpx.RemoteProtocolError):
            await _rekey(client, uuid)
        await anyio.sleep(0.01)
    assert [(r["status"], r["outcome"]) for r in _rekeys(app)] == [(0, "success")]
