"""Every cloud key manager ONTAP rekeys: AWS KMS, Azure Key Vault, Google Cloud KMS and
Barbican collections, their rekey-external / rekey-internal actions, version gates,
codes and faults (ontap-rest-notes.md section 2's table)."""

from __future__ import annotations

from typing import Any

import httpx
import pydantic
import pytest

from orchestrator.cli import main
from orchestrator.simulator import Fleet, FleetSpec, Scenario, SimulatorApp
from tests.simfleet import sim_client

AUTH = ("admin", "netapp-sim")
FAST = "job_duration: {min_s: 0.001, max_s: 0.001}"
PROVIDERS = ["aws", "azure", "gcp", "barbican"]
COLLECTION = {
    "aws": "aws-kms",
    "azure": "azure-key-vaults",
    "gcp": "gcp-kms",
    "barbican": "barbican-kms",
}
KEY_FIELD = {"aws": "key_id", "azure": "key_id", "gcp": "key_name", "barbican": "key_id"}


def _app(faults: str = "[]", *, version: str = "9.17.1", svms: int = 4) -> SimulatorApp:
    """One cluster whose SVMs svm01..svm04 use aws, azure, gcp, barbican."""
    spec = FleetSpec.generate(1, svms, versions=[version], key_managers=PROVIDERS)  # type: ignore[arg-type]
    fleet = Fleet(spec, Scenario.from_yaml(f"options: {{{FAST}}}\nfaults: {faults}"), seed=4)
    fleet.bind_default()
    return SimulatorApp(fleet)


async def _record(client: httpx.AsyncClient, provider: str) -> dict[str, Any]:
    url = f"/api/security/{COLLECTION[provider]}"
    (record,) = (await client.get(url, params={"fields": "*"})).json()["records"]
    return dict(record)


async def _rekey(
    client: httpx.AsyncClient, provider: str, uuid: str, operation: str, body: Any = None
) -> httpx.Response:
    url = f"/api/security/{COLLECTION[provider]}/{uuid}/rekey-{operation}"
    return await client.post(url, params={"return_timeout": 5}, json=body)


def _svm(app: SimulatorApp, svm: str) -> dict[str, Any]:
    return dict(app.fleet.stats()["svms"][f"c001/{svm}"])


def test_key_managers_go_round_robin_over_each_clusters_svms() -> None:
    spec = FleetSpec.generate(2, 5, key_managers=["aws", "azure", "gcp"])
    for cluster in spec.clusters:
        assert cluster.key_managers == {"svm02": "azure", "svm03": "gcp", "svm05": "azure"}


def test_fleet_file_names_a_key_manager_per_svm() -> None:
    text = "generate: {clusters: 1, svms: 2, key_managers: [gcp]}\n"
    text += "clusters: [{name: x, svms: [a, b], key_managers: {b: azure}}]"
    spec = FleetSpec.from_yaml(text)
    assert spec.clusters[0].key_managers == {"svm01": "gcp", "svm02": "gcp"}
    assert spec.clusters[1].key_managers == {"b": "azure"}
    with pytest.raises(pydantic.ValidationError):
        FleetSpec.from_yaml("clusters: [{name: x, svms: [a], key_managers: {a: ibm}}]")


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.anyio
async def test_each_collection_lists_its_own_configurations(provider: str) -> None:
    app = _app()
    async with sim_client(app) as client:
        record = await _record(client, provider)
        stores = (await client.get("/api/security/key-stores", params={"fields": "*"})).json()
    svm = f"svm0{PROVIDERS.index(provider) + 1}"
    assert record["svm"]["name"] == svm
    assert KEY_FIELD[provider] in record
    store = next(s for s in stores["records"] if s["svm"]["name"] == svm)
    assert store["type"] == {"aws": "aws", "azure": "akv", "gcp": "gcp"}.get(provider, provider)
    href = store["configuration"]["_links"]["self"]["href"]
    assert href == f"/api/security/{COLLECTION[provider]}/{record['uuid']}"
    assert _svm(app, svm)["provider"] == provider


@pytest.mark.parametrize(
    ("path", "since"),
    [
        ("azure-key-vaults", "9.8.0"),
        ("azure-key-vaults/{uuid}/rekey-internal", "9.10.0"),
        ("azure-key-vaults/{uuid}/rekey-external", "9.11.0"),
        ("gcp-kms", "9.9.0"),
        ("gcp-kms/{uuid}/rekey-internal", "9.10.0"),
        ("gcp-kms/{uuid}/rekey-external", "9.11.0"),
        ("aws-kms/{uuid}/rekey-internal", "9.12.0"),
        ("barbican-kms", "9.17.0"),
        ("barbican-kms/{uuid}/rekey-internal", "9.17.0"),
    ],
)
@pytest.mark.parametrize("offset", [-1, 0])
@pytest.mark.anyio
async def test_endpoints_exist_from_their_version(path: str, since: str, offset: int) -> None:
    """One minor version before its gate an endpoint is ONTAP's 404 "API not found"."""
    generation, major, _ = (int(p) for p in since.split("."))
    app = _app(version=f"{generation}.{major + offset}.1")
    provider = next(p for p, c in COLLECTION.items() if path.startswith(c))
    uuid = app.fleet.clusters[0].svms[PROVIDERS.index(provider)].kms.uuid  # type: ignore[union-attr]
    url = f"/api/security/{path.replace('{uuid}', uuid)}"
    async with sim_client(app) as client:
        if "rekey" in path:
            body = {KEY_FIELD[provider]: "k"} if path.endswith("external") else None
            response = await client.post(url, params={"return_timeout": 5}, json=body)
        else:
            response = await client.get(url)
    if offset < 0:
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "4"
    else:
        assert response.status_code in (200, 201, 202)


@pytest.mark.anyio
async def test_barbican_has_no_external_rekey() -> None:
    async with sim_client(_app()) as client:
        uuid = (await _record(client, "barbican"))["uuid"]
        response = await _rekey(client, "barbican", uuid, "external", {"key_id": "k"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("provider", "body", "key"),
    [
        ("aws", {"key_id": "arn:aws:kms:new"}, "arn:aws:kms:new"),
        (
            "azure",
            {"key_id": "https://v.vault.azure.net/keys/k/2"},
            "https://v.vault.azure.net/keys/k/2",
        ),
        ("gcp", {"key_name": "key-new"}, "key-new"),
        (
            "gcp",
            {
                "key_name": "key-new",
                "project_id": "p",
                "key_ring_location": "europe-west1",
                "key_ring_name": "ring",
            },
            "key-new",
        ),
    ],
)
@pytest.mark.anyio
async def test_external_rekey_changes_the_key(provider: str, body: Any, key: str) -> None:
    app = _app()
    svm = f"svm0{PROVIDERS.index(provider) + 1}"
    async with sim_client(app) as client:
        uuid = (await _record(client, provider))["uuid"]
        response = await _rekey(client, provider, uuid, "external", body)
        after = await _record(client, provider)
    assert response.status_code == 201
    job = response.json()["job"]
    assert job["description"] == f"POST /api/security/{COLLECTION[provider]}/{uuid}/rekey-external"
    assert after[KEY_FIELD[provider]] == key
    truth = _svm(app, svm)
    assert truth["key_version"] == 2
    assert [(r["provider"], r["operation"], r["key_id"]) for r in truth["rekeys"]] == [
        (provider, "external", key)
    ]


@pytest.mark.parametrize(
    ("provider", "body", "code", "target"),
    [
        ("azure", {}, "262177", "key_id"),
        ("azure", {"key_name": "k"}, "262179", "key_name"),
        ("gcp", {}, "262177", "key_name"),
        ("gcp", {"key_id": "k"}, "262179", "key_id"),
        ("gcp", {"key_name": "projects/p/keys/k"}, "65537753", "key_name"),
    ],
)
@pytest.mark.anyio
async def test_external_rekey_bodies_are_validated(
    provider: str, body: Any, code: str, target: str
) -> None:
    app = _app()
    async with sim_client(app) as client:
        uuid = (await _record(client, provider))["uuid"]
        response = await _rekey(client, provider, uuid, "external", body)
    assert response.status_code == 400
    assert (response.json()["error"]["code"], response.json()["error"]["target"]) == (code, target)
    assert _svm(app, f"svm0{PROVIDERS.index(provider) + 1}")["rekeys"] == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.anyio
async def test_internal_rekey_takes_no_body_and_keeps_the_key(provider: str) -> None:
    """rekey-internal replaces the SVM's own KEK: a job, no key id change; a body field is
    262179."""
    app = _app()
    svm = f"svm0{PROVIDERS.index(provider) + 1}"
    async with sim_client(app) as client:
        before = await _record(client, provider)
        refused = await _rekey(client, provider, before["uuid"], "internal", {"key_id": "k"})
        response = await _rekey(client, provider, before["uuid"], "internal")
        after = await _record(client, provider)
    assert refused.json()["error"]["code"] == "262179"
    assert response.status_code == 201
    assert response.json()["job"]["state"] == "success"
    assert after[KEY_FIELD[provider]] == before[KEY_FIELD[provider]]
    truth = _svm(app, svm)
    assert truth["key_version"] == 1
    assert [(r["provider"], r["operation"], r["outcome"]) for r in truth["rekeys"]] == [
        (provider, "internal", "success")
    ]


@pytest.mark.parametrize(
    ("provider", "code"),
    [("aws", "65537926"), ("azure", "65537120"), ("gcp", "65537721"), ("barbican", "65539817")],
)
@pytest.mark.anyio
async def test_not_configured_answers_each_providers_code(provider: str, code: str) -> None:
    app = _app("[{kind: not_configured}]")
    async with sim_client(app) as client:
        uuid = (await _record(client, provider))["uuid"]
        response = await _rekey(client, provider, uuid, "internal")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.anyio
async def test_internal_rekey_with_a_node_down_is_refused_65537566(provider: str) -> None:
    app = _app("[{kind: node_down, node: c001-02}]")
    async with sim_client(app) as client:
        uuid = (await _record(client, provider))["uuid"]
        response = await _rekey(client, provider, uuid, "internal")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "65537566"


@pytest.mark.parametrize(("provider", "code"), [("azure", 65537919), ("gcp", 65537729)])
@pytest.mark.anyio
async def test_external_rekey_with_the_cloud_unreachable_fails_its_job(
    provider: str, code: int
) -> None:
    """GCP's twin of 65537919 is 65537729 ("try the rekey operation again")."""
    svm = f"svm0{PROVIDERS.index(provider) + 1}"
    app = _app(f"[{{kind: amazon_unreachable, svm: {svm}}}]")
    async with sim_client(app) as client:
        record = await _record(client, provider)
        body = {KEY_FIELD[provider]: "k2"}
        response = await _rekey(client, provider, record["uuid"], "external", body)
        url = f"/api/security/{COLLECTION[provider]}/{record['uuid']}"
        fields = "state,azure_reachability" if provider == "azure" else "state,google_reachability"
        health = (await client.get(url, params={"fields": fields})).json()
    job = response.json()["job"]
    assert (job["state"], job["code"]) == ("failure", code)
    assert health["state"]["cluster_state"] is False
    assert health[fields.split(",")[1]]["reachable"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key-managers", "aws,ibm"], "not one of aws, azure, gcp, barbican"),
        (["--key-managers", ","], "at least one"),
        (["--fleet", "f.yaml", "--key-managers", "aws"], "exclude each other"),
    ],
)
def test_simulate_key_managers_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]
