"""Version personalities: each ONTAP version 9.12.1..9.17.1 serves its documented shape
(ontap-rest-notes.md sections 1, 2, 4), and a field a version lacks is ONTAP's 400."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.cli import main
from orchestrator.simulator import Fleet, FleetSpec, Scenario, SimulatorApp, SimulatorTransport
from tests.test_simulate_cli import read_json, simulate

VERSIONS = ["9.12.1", "9.13.1", "9.14.1", "9.15.1", "9.16.1", "9.17.1"]
AUTH = ("admin", "netapp-sim")
FAST = "options: {job_duration: {min_s: 0.001, max_s: 0.001}}"
REKEY = "/api/security/aws-kms/{}/rekey-external"
BASE_FIELDS = {"uuid", "svm", "type", "location", "_links"}
FROM_9_14 = {"scope", "enabled", "configuration"}
FROM_9_16_1 = {"state", "is_svm_kek"}
# gated key-store field -> first version that has it
GATED = {"scope": "9.14.1", "enabled": "9.14.1", "configuration": "9.14.1"} | {
    "state": "9.16.1",
    "is_svm_kek": "9.16.1",
}


def _fleet(scenario: str = FAST) -> Fleet:
    """One cluster per version: c001 = 9.12.1 ... c006 = 9.17.1."""
    spec = FleetSpec.generate(len(VERSIONS), 2, versions=VERSIONS)
    fleet = Fleet(spec, Scenario.from_yaml(scenario), seed=1)
    fleet.bind_default()
    return fleet


def _client(fleet: Fleet, version: str) -> httpx.AsyncClient:
    port = 20001 + VERSIONS.index(version)
    return httpx.AsyncClient(
        transport=SimulatorTransport(SimulatorApp(fleet)),
        base_url=f"http://127.0.0.1:{port}",
        auth=AUTH,
    )


def _at_least(version: str, gate: str) -> bool:
    return tuple(map(int, version.split("."))) >= tuple(map(int, gate.split(".")))


async def _kms_uuid(client: httpx.AsyncClient) -> str:
    return str((await client.get("/api/security/aws-kms")).json()["records"][0]["uuid"])


def test_versions_go_round_robin_over_generated_clusters() -> None:
    """`generate(versions=...)` gives c001 the first version, c002 the second, and wraps."""
    spec = FleetSpec.generate(8, 1, versions=VERSIONS)
    assert [c.version for c in spec.clusters] == [*VERSIONS, *VERSIONS[:2]]
    assert {c.version for c in FleetSpec.generate(3, 1).clusters} == {"9.14.1"}


def test_fleet_file_generate_takes_versions() -> None:
    """A fleet file's `generate:` takes `versions:` too; explicit clusters keep theirs."""
    text = 'generate: {clusters: 3, svms: 1, versions: ["9.12.1", "9.16.1"]}\n'
    text += 'clusters: [{name: x, svms: 1, version: "9.17.1"}]'
    spec = FleetSpec.from_yaml(text)
    assert [c.version for c in spec.clusters] == ["9.12.1", "9.16.1", "9.12.1", "9.17.1"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.anyio
async def test_cluster_reports_its_version(version: str) -> None:
    async with _client(_fleet(), version) as client:
        body = (await client.get("/api/cluster", params={"fields": "version"})).json()
    major, minor = (int(p) for p in version.split(".")[1:])
    assert (body["version"]["generation"], body["version"]["major"]) == (9, major)
    assert body["version"]["minor"] == minor


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.anyio
async def test_key_store_record_has_the_versions_fields(version: str) -> None:
    """`fields=*`: 9.12/9.13 the base fields; 9.14 adds scope/enabled/configuration;
    9.16.1 adds state and is_svm_kek."""
    async with _client(_fleet(), version) as client:
        body = (await client.get("/api/security/key-stores", params={"fields": "*"})).json()
    record = body["records"][0]
    expected = set(BASE_FIELDS)
    if _at_least(version, "9.14.1"):
        expected |= FROM_9_14
    if _at_least(version, "9.16.1"):
        expected |= FROM_9_16_1
    assert set(record) == expected


@pytest.mark.parametrize("field", sorted(GATED))
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.anyio
async def test_asking_for_a_field_the_version_lacks_is_ontaps_400(version: str, field: str) -> None:
    """Before its version a gated field is an unknown `fields` entry (400, 262197, target
    fields); from it, the field comes back."""
    async with _client(_fleet(), version) as client:
        response = await client.get("/api/security/key-stores", params={"fields": field})
    if _at_least(version, GATED[field]):
        assert response.status_code == 200
        assert field in response.json()["records"][0]
    else:
        assert response.status_code == 400
        error = response.json()["error"]
        assert (error["code"], error["target"]) == ("262197", "fields")


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.anyio
async def test_key_store_instance_get_and_patch_exist_from_9_14(version: str) -> None:
    async with _client(_fleet(), version) as client:
        uuid = (await client.get("/api/security/key-stores")).json()["records"][0]["uuid"]
        got = await client.get(f"/api/security/key-stores/{uuid}")
        patched = await client.patch(f"/api/security/key-stores/{uuid}", json={"enabled": True})
    if _at_least(version, "9.14.1"):
        assert (got.status_code, patched.status_code) == (200, 200)
    else:
        assert (got.status_code, patched.status_code) == (404, 404)
        assert got.json()["error"]["code"] == "4"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.anyio
async def test_rekey_answers_202_only_before_9_14(version: str) -> None:
    """A rekey that finished within return_timeout: 201 from 9.14; 9.12/9.13 document 202
    only, so they answer 202 with the job link even then."""
    fleet = _fleet()
    async with _client(fleet, version) as client:
        uuid = await _kms_uuid(client)
        response = await client.post(
            REKEY.format(uuid), params={"return_timeout": 5}, json={"key_id": "k2"}
        )
    if _at_least(version, "9.14.1"):
        assert response.status_code == 201
        assert response.json()["job"]["state"] == "success"
    else:
        assert response.status_code == 202
        assert set(response.json()["job"]) == {"uuid", "_links"}
    cluster = f"c00{VERSIONS.index(version) + 1}"
    rekeys = fleet.stats()["svms"][f"{cluster}/svm01"]["rekeys"]
    assert [r["status"] for r in rekeys] == [response.status_code]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.anyio
async def test_rekey_body_takes_svm_and_scope_only_before_9_14(version: str) -> None:
    body: dict[str, Any] = {"key_id": "k2", "svm": {"name": "svm01"}, "scope": "svm"}
    async with _client(_fleet(), version) as client:
        uuid = await _kms_uuid(client)
        response = await client.post(REKEY.format(uuid), params={"return_timeout": 5}, json=body)
    if _at_least(version, "9.14.1"):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "262179"
    else:
        assert response.status_code == 202


@pytest.mark.anyio
async def test_a_disabled_key_store_shows_no_state() -> None:
    """9.16.1: a key store that is not enabled has no `state` (nor is_svm_kek)."""
    fleet = _fleet(FAST + "\nfaults: [{kind: keystore_disabled, svm: svm01}]")
    async with _client(fleet, "9.16.1") as client:
        body = (await client.get("/api/security/key-stores", params={"fields": "*"})).json()
    by_svm = {r["svm"]["name"]: r for r in body["records"]}
    assert by_svm["svm01"]["enabled"] is False
    assert "state" not in by_svm["svm01"]
    assert by_svm["svm02"]["state"] == "active"


@pytest.mark.parametrize("version", ["9.11.1", *VERSIONS])
@pytest.mark.anyio
async def test_aws_kms_api_exists_from_9_12(version: str) -> None:
    spec = FleetSpec.generate(1, 1, versions=[version])
    fleet = Fleet(spec)
    fleet.bind_default()
    transport = SimulatorTransport(SimulatorApp(fleet))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1:20001", auth=AUTH
    ) as client:
        response = await client.get("/api/security/aws-kms")
    assert response.status_code == (404 if version == "9.11.1" else 200)


def test_simulate_versions_round_robin_over_the_served_clusters(tmp_path: Path) -> None:
    """`simulate --clusters 3 --versions 9.12.1,9.16.1`: c001 9.12.1, c002 9.16.1, c003
    9.12.1, as each cluster answers on its socket."""
    ready = tmp_path / "ready.json"
    args = ["--clusters", "3", "--svms", "1", "--versions", "9.12.1,9.16.1"]
    with simulate(*args, "--ready-file", str(ready)):
        urls = read_json(ready)["urls"]
        majors = [
            httpx.get(f"{urls[name]}/api/cluster", auth=AUTH).json()["version"]["major"]
            for name in ("c001", "c002", "c003")
        ]
    assert majors == [12, 16, 12]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--versions", "9.x"], "not an ONTAP version"),
        (["--versions", ","], "at least one version"),
        (["--fleet", "f.yaml", "--versions", "9.12.1"], "exclude each other"),
    ],
)
def test_simulate_versions_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]
