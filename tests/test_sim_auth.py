"""Authentication: basic, lockout, client-certificate CN, bearer tokens, wrong password."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.simulator import (
    ClusterDef,
    Fleet,
    FleetSpec,
    Scenario,
    SimulatorApp,
)
from tests.simfleet import sim_client

BASE = "http://127.0.0.1:20001"


def _app(scenario: str = "", **cluster: Any) -> SimulatorApp:
    definition = ClusterDef(name="c001", svms=["svm01"], **cluster)
    fleet = Fleet(FleetSpec(clusters=[definition]), Scenario.from_yaml(scenario))
    fleet.bind_default()
    return SimulatorApp(fleet)


@pytest.mark.anyio
async def test_missing_or_wrong_credentials_get_401_with_ontap_body() -> None:
    app = _app()
    async with sim_client(app, auth=None) as client:
        missing = await client.get("/api/cluster")
        wrong = await client.get("/api/cluster", auth=("admin", "nope"))
        right = await client.get("/api/cluster", auth=("admin", "netapp-sim"))
    assert missing.status_code == wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Basic")
    assert wrong.json()["error"]["code"] == "6691623"
    assert right.status_code == 200
    assert app.fleet.stats()["clusters"]["c001"]["failed_logins"] == 2


@pytest.mark.anyio
async def test_account_locks_after_n_failures_even_for_the_right_password() -> None:
    app = _app("options: {lockout_after: 3}")
    async with sim_client(app, auth=None) as client:
        for _ in range(3):
            await client.get("/api/cluster", auth=("admin", "nope"))
        locked = await client.get("/api/cluster", auth=("admin", "netapp-sim"))
    assert locked.status_code == 401
    assert "locked" in locked.json()["error"]["message"]
    assert app.fleet.stats()["clusters"]["c001"]["failed_logins"] == 4


@pytest.mark.anyio
async def test_success_resets_the_failure_count() -> None:
    app = _app("options: {lockout_after: 2}")
    async with sim_client(app, auth=None) as client:
        await client.get("/api/cluster", auth=("admin", "nope"))
        await client.get("/api/cluster", auth=("admin", "netapp-sim"))
        await client.get("/api/cluster", auth=("admin", "nope"))
        again = await client.get("/api/cluster", auth=("admin", "netapp-sim"))
    assert again.status_code == 200


@pytest.mark.anyio
async def test_wrong_password_fault_changes_the_clusters_password() -> None:
    app = _app("faults: [{kind: wrong_password, cluster: c001}]")
    async with sim_client(app, auth=None) as client:
        response = await client.get("/api/cluster", auth=("admin", "netapp-sim"))
    assert response.status_code == 401
    assert app.fleet.clusters[0].password == "netapp-sim-rotated"


@pytest.mark.anyio
async def test_client_certificate_cn_of_a_known_user_authenticates() -> None:
    app = _app()
    scope_cn: dict[str, Any] = {"tls": {"client_cert_cn": "admin"}}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/cluster",
        "query_string": b"",
        "headers": [],
        "server": ("127.0.0.1", 20001),
        "extensions": scope_cn,
    }
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    scope["extensions"] = {"tls": {"client_cert_cn": "stranger"}}
    await app(scope, receive, send)
    assert sent[2]["status"] == 401


@pytest.mark.anyio
async def test_bearer_tokens_work_from_9_14_only() -> None:
    headers = {"Authorization": "Bearer tok-1"}
    async with sim_client(_app(tokens=["tok-1"]), auth=None, headers=headers) as client:
        assert (await client.get("/api/cluster")).status_code == 200
    old = _app(tokens=["tok-1"], version="9.13.1")
    async with sim_client(old, auth=None, headers=headers) as client:
        assert (await client.get("/api/cluster")).status_code == 401


@pytest.mark.anyio
async def test_extra_users_from_the_fleet_definition() -> None:
    async with sim_client(_app(users={"ops": "pw"}), auth=("ops", "pw")) as client:
        assert (await client.get("/api/cluster")).status_code == 200
