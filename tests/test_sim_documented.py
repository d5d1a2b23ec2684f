"""ONTAP as documented: the answers issue 11 lists where the simulator used to differ
(return_timeout, key-store identity, aws-kms fields, health faults, remedies)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orchestrator.simulator import Fleet, FleetSpec, Scenario, SimulatorApp
from tests.simfleet import sim_client

BASE = "http://127.0.0.1:20001"
REKEY = "/api/security/aws-kms/{}/rekey-external"
FAST = "job_duration: {min_s: 0.001, max_s: 0.001}"


def _app(faults: str = "[]", *, options: str = "", version: str = "9.16.1") -> SimulatorApp:
    extra = f", {options}" if options else ""
    text = f"options: {{{FAST}{extra}}}\nfaults: {faults}"
    spec = FleetSpec.generate(1, 4, versions=[version])
    fleet = Fleet(spec, Scenario.from_yaml(text), seed=2)
    fleet.bind_default()
    return SimulatorApp(fleet)


async def _uuid(client: httpx.AsyncClient, svm: str = "svm01") -> str:
    body = (await client.get("/api/security/aws-kms", params={"svm.name": svm})).json()
    return str(body["records"][0]["uuid"])


async def _rekey(client: httpx.AsyncClient, uuid: str) -> httpx.Response:
    return await client.post(REKEY.format(uuid), params={"return_timeout": 5}, json={"key_id": "n"})


def _svm(app: SimulatorApp, svm: str = "svm01") -> dict[str, Any]:
    return dict(app.fleet.stats()["svms"][f"c001/{svm}"])


# -- return_timeout ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["121", "-1", "600", "soon"])
@pytest.mark.anyio
async def test_post_return_timeout_outside_0_120_is_refused(value: str) -> None:
    """ONTAP: 400, code 262197, target return_timeout, `The value "121" is invalid for
    field "return_timeout" (<0..120>)`; nothing happens."""
    app = _app()
    async with sim_client(app) as client:
        uuid = await _uuid(client)
        response = await client.post(
            REKEY.format(uuid), params={"return_timeout": value}, json={"key_id": "n"}
        )
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "262197",
        "target": "return_timeout",
        "message": f'The value "{value}" is invalid for field "return_timeout" (<0..120>)',
    }
    assert _svm(app)["rekeys"] == []


@pytest.mark.parametrize("path", ["/api/security/aws-kms", "/api/cluster", "/api/cluster/jobs"])
@pytest.mark.anyio
async def test_get_return_timeout_is_validated(path: str) -> None:
    async with sim_client(_app()) as client:
        bad = await client.get(path, params={"return_timeout": "121"})
        good = await client.get(path, params={"return_timeout": "120"})
    assert bad.status_code == 400
    assert bad.json()["error"]["target"] == "return_timeout"
    assert good.status_code == 200


@pytest.mark.parametrize(("timeout", "per_page"), [(None, 3), ("10", 2), ("0", 1)])
@pytest.mark.anyio
async def test_get_return_timeout_cuts_pages(timeout: str | None, per_page: int) -> None:
    """With 5 s of cluster time per record, a page holds what fits in return_timeout
    (GET default 15 s: three records), then `next` continues."""
    app = _app(options="record_cost_s: 5")
    params = {} if timeout is None else {"return_timeout": timeout}
    async with sim_client(app) as client:
        first = (await client.get("/api/security/aws-kms", params=params)).json()
        rest = (await client.get(first["_links"]["next"]["href"])).json()
    assert first["num_records"] == per_page
    assert rest["num_records"] == min(per_page, 4 - per_page)


# -- key stores and aws-kms records ------------------------------------------------------


@pytest.mark.anyio
async def test_key_store_identity_is_its_configuration() -> None:
    """uuid == configuration.uuid == the aws-kms uuid; name `default`; `_links` to the
    concrete configuration; is_svm_kek present."""
    async with sim_client(_app()) as client:
        kms = await _uuid(client)
        query = {"fields": "*", "svm.name": "svm01"}
        (store,) = (await client.get("/api/security/key-stores", params=query)).json()["records"]
    assert store["uuid"] == store["configuration"]["uuid"] == kms
    assert store["configuration"]["name"] == "default"
    assert store["configuration"]["_links"]["self"]["href"] == f"/api/security/aws-kms/{kms}"
    assert store["is_svm_kek"] is False


@pytest.mark.anyio
async def test_cluster_scoped_key_store_has_no_svm() -> None:
    async with sim_client(_app("[{kind: cluster_scope}]")) as client:
        query = {"fields": "*", "scope": "cluster"}
        (store,) = (await client.get("/api/security/key-stores", params=query)).json()["records"]
    assert "svm" not in store
    assert store["scope"] == "cluster"


@pytest.mark.anyio
async def test_aws_kms_records_have_encryption_context_and_skip_verify() -> None:
    async with sim_client(_app()) as client:
        record = (await client.get(f"/api/security/aws-kms/{await _uuid(client)}")).json()
    assert record["encryption_context"] == ""
    assert record["skip_verify"] is False


@pytest.mark.anyio
async def test_reachability_failure_uses_the_documented_code() -> None:
    async with sim_client(_app("[{kind: amazon_unreachable, svm: svm01}]")) as client:
        fields = {"fields": "state,amazon_reachability"}
        record = (
            await client.get(f"/api/security/aws-kms/{await _uuid(client)}", params=fields)
        ).json()
    assert record["state"]["code"] == record["amazon_reachability"]["code"] == "346758"
    assert record["state"]["message"].startswith("AWS KMS key protection is unavailable")


# -- health faults make a rekey fail -----------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        "{kind: amazon_unreachable, svm: svm01}",
        "{kind: ekmip_unreachable, svm: svm01, node: '*-02'}",
        "{kind: node_down, node: c001-02}",
    ],
)
@pytest.mark.anyio
async def test_unhealthy_external_rekey_fails_its_job_with_65537919(fault: str) -> None:
    """AWS unreachable, a key server or a node down: the rekey is accepted and its job
    fails with 65537919 ("External rekey failed on one or more nodes"); nothing changes."""
    app = _app(f"[{fault}]")
    async with sim_client(app) as client:
        response = await _rekey(client, await _uuid(client))
    assert response.status_code == 201
    job = response.json()["job"]
    assert (job["state"], job["code"]) == ("failure", 65537919)
    assert [r["outcome"] for r in _svm(app)["rekeys"]] == ["failure"]
    assert _svm(app)["key_version"] == 1


@pytest.mark.anyio
async def test_a_node_down_shows_in_nodes_and_reachability() -> None:
    async with sim_client(_app("[{kind: node_down, node: c001-02}]")) as client:
        nodes = (await client.get("/api/cluster/nodes", params={"fields": "state"})).json()
        fields = {"fields": "ekmip_reachability"}
        record = (
            await client.get(f"/api/security/aws-kms/{await _uuid(client)}", params=fields)
        ).json()
    assert [n["state"] for n in nodes["records"]] == ["up", "down"]
    assert [n["reachable"] for n in record["ekmip_reachability"]] == [True, False]


@pytest.mark.anyio
async def test_a_health_failure_can_take_the_sync_path() -> None:
    app = _app("[{kind: amazon_unreachable, svm: svm01, as: sync}]")
    async with sim_client(app) as client:
        response = await _rekey(client, await _uuid(client))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "65537919"
    assert _svm(app)["rekeys"] == []
    assert _svm(app)["refusals"] == {"65537919": 1}


@pytest.mark.anyio
async def test_a_blocked_key_store_refuses_the_rekey() -> None:
    app = _app("[{kind: keystore_state, svm: svm01, state: blocked}]")
    async with sim_client(app) as client:
        blocked = await _rekey(client, await _uuid(client))
        other = await _rekey(client, await _uuid(client, "svm02"))
    assert blocked.status_code == 400
    assert blocked.json()["error"]["code"] == "65537556"
    assert other.status_code == 201


# -- the remedies ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_patch_enabled_true_completes_a_stuck_switch() -> None:
    """A stuck switch refuses every rekey (65537610) until `PATCH key-stores/{uuid}
    {"enabled": true}` completes it."""
    app = _app("[{kind: keystore_switching, svm: svm01}]", version="9.14.1")
    async with sim_client(app) as client:
        uuid = await _uuid(client)
        before = await _rekey(client, uuid)
        patched = await client.patch(f"/api/security/key-stores/{uuid}", json={"enabled": True})
        after = await _rekey(client, uuid)
    assert before.json()["error"]["code"] == "65537610"
    assert patched.status_code == 200
    assert after.status_code == 201
    assert [r["outcome"] for r in _svm(app)["rekeys"]] == ["success"]


@pytest.mark.parametrize(
    ("body", "code"), [({"enabled": False}, "262197"), ({"enabled": True, "x": 1}, "262179")]
)
@pytest.mark.anyio
async def test_patch_key_store_validates_its_body(body: dict[str, Any], code: str) -> None:
    async with sim_client(_app(version="9.14.1")) as client:
        uuid = await _uuid(client)
        response = await client.patch(f"/api/security/key-stores/{uuid}", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.anyio
async def test_patch_enables_a_disabled_key_store() -> None:
    async with sim_client(_app("[{kind: keystore_disabled, svm: svm01}]")) as client:
        uuid = await _uuid(client)
        await client.patch(f"/api/security/key-stores/{uuid}", json={"enabled": True})
        store = (await client.get(f"/api/security/key-stores/{uuid}")).json()
    assert (store["enabled"], store["state"]) == (True, "active")


@pytest.mark.anyio
async def test_migrate_moves_the_keys_out_of_the_admin_svm_as_a_job() -> None:
    """65537547 until `POST key-managers/{admin}/migrate {"uuid": <the SVM's>}` ran; the
    migration is a job and no rekey."""
    app = _app("[{kind: keys_in_admin_svm, svm: svm01}]")
    async with sim_client(app) as client:
        uuid = await _uuid(client)
        before = await _rekey(client, uuid)
        (manager,) = (await client.get("/api/security/key-managers")).json()["records"]
        url = f"/api/security/key-managers/{manager['uuid']}/migrate"
        migrated = await client.post(url, params={"return_timeout": 5}, json={"uuid": uuid})
        after = await _rekey(client, uuid)
    assert before.json()["error"]["code"] == "65537547"
    assert migrated.status_code == 201
    job = migrated.json()["job"]
    assert job["state"] == "success"
    assert job["description"] == f"POST /api/security/key-managers/{manager['uuid']}/migrate"
    assert after.status_code == 201
    assert [r["outcome"] for r in _svm(app)["rekeys"]] == ["success"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "262177"),
        ({"uuid": "nope"}, 400, "262197"),
        ({"uuid": "x", "y": 1}, 400, "262179"),
    ],
)
@pytest.mark.anyio
async def test_migrate_validates_its_body(body: dict[str, Any], status: int, code: str) -> None:
    async with sim_client(_app()) as client:
        (manager,) = (await client.get("/api/security/key-managers")).json()["records"]
        url = f"/api/security/key-managers/{manager['uuid']}/migrate"
        response = await client.post(url, json=body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
