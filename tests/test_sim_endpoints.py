"""The simulator's ONTAP endpoints, in-process: shapes, fields, filters, paging, errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from orchestrator.simulator import Fleet, FleetSpec, Scenario, SimulatorApp
from tests.simfleet import sim_client

BASE = "http://127.0.0.1:20001"
AUTH = ("admin", "netapp-sim")


def _app(
    svms: int = 4, scenario: str = "", clusters: int = 2, version: str = "9.14.1"
) -> SimulatorApp:
    spec = FleetSpec.generate(clusters, svms, versions=[version])
    fleet = Fleet(spec, Scenario.from_yaml(scenario), seed=1)
    fleet.bind_default()
    return SimulatorApp(fleet)


FAST_JOBS = "options: {job_duration: {min_s: 0.001, max_s: 0.001}}"


@pytest.fixture
async def client() -> Any:
    async with sim_client(_app(scenario=FAST_JOBS)) as c:
        yield c


@pytest.mark.anyio
async def test_cluster_reports_name_uuid_and_version(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/cluster", params={"fields": "version,name,uuid"})).json()
    assert body["name"] == "c001"
    assert body["version"]["generation"] == 9
    assert body["version"]["major"] == 14
    assert set(body) == {"name", "uuid", "version", "_links"}


@pytest.mark.anyio
async def test_cluster_fields_projects_nested_fields(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/cluster", params={"fields": "version.full"})).json()
    assert set(body["version"]) == {"full"}


@pytest.mark.anyio
async def test_nodes_and_svms_list_their_records(client: httpx.AsyncClient) -> None:
    nodes = (await client.get("/api/cluster/nodes", params={"fields": "*"})).json()
    assert [n["name"] for n in nodes["records"]] == ["c001-01", "c001-02"]
    svms = (await client.get("/api/svm/svms", params={"fields": "name,state,subtype"})).json()
    assert svms["num_records"] == 4
    assert svms["records"][0] | {"_links": None} == {
        "uuid": svms["records"][0]["uuid"],
        "name": "svm01",
        "state": "running",
        "subtype": "default",
        "_links": None,
    }


@pytest.mark.anyio
async def test_aws_kms_collection_without_fields_returns_keys_only(
    client: httpx.AsyncClient,
) -> None:
    body = (await client.get("/api/security/aws-kms")).json()
    assert body["num_records"] == 4
    assert set(body["records"][0]) == {"uuid", "svm", "_links"}
    assert set(body["records"][0]["svm"]) == {"name"}


@pytest.mark.anyio
async def test_star_fields_leave_out_advanced_health_fields(client: httpx.AsyncClient) -> None:
    record = (await client.get("/api/security/aws-kms", params={"fields": "*"})).json()
    first = record["records"][0]
    assert first["scope"] == "svm"
    assert first["region"]
    assert "key_id" in first
    assert not {"state", "amazon_reachability", "ekmip_reachability"} & set(first)


@pytest.mark.anyio
async def test_advanced_fields_come_only_when_named(client: httpx.AsyncClient) -> None:
    uuid = (await client.get("/api/security/aws-kms")).json()["records"][0]["uuid"]
    fields = "state,amazon_reachability,ekmip_reachability"
    record = (await client.get(f"/api/security/aws-kms/{uuid}", params={"fields": fields})).json()
    assert record["state"]["cluster_state"] is True
    assert record["amazon_reachability"]["reachable"] is True
    assert len(record["ekmip_reachability"]) == 2
    plain = (await client.get(f"/api/security/aws-kms/{uuid}")).json()
    assert "state" not in plain
    assert plain["key_id"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"svm.name": "svm01"}, ["svm01"]),
        ({"svm.name": "svm0*"}, ["svm01", "svm02", "svm03", "svm04"]),
        ({"svm.name": "svm01|svm03"}, ["svm01", "svm03"]),
        ({"svm.name": "!svm01"}, ["svm02", "svm03", "svm04"]),
        ({"scope": "cluster"}, []),
        ({"svm.name": "svm02", "scope": "svm"}, ["svm02"]),
    ],
)
@pytest.mark.anyio
async def test_aws_kms_query_filters(
    client: httpx.AsyncClient, query: dict[str, str], expected: list[str]
) -> None:
    body = (await client.get("/api/security/aws-kms", params=query)).json()
    assert [r["svm"]["name"] for r in body["records"]] == expected


@pytest.mark.anyio
async def test_filters_on_uuid_and_svm_uuid(client: httpx.AsyncClient) -> None:
    first = (await client.get("/api/security/aws-kms", params={"fields": "svm.uuid"})).json()
    record = first["records"][2]
    for query in ({"uuid": record["uuid"]}, {"svm.uuid": record["svm"]["uuid"]}):
        body = (await client.get("/api/security/aws-kms", params=query)).json()
        assert [r["uuid"] for r in body["records"]] == [record["uuid"]]


@pytest.mark.anyio
async def test_filter_on_advanced_field_is_allowed(client: httpx.AsyncClient) -> None:
    query = {"amazon_reachability.reachable": "false"}
    body = (await client.get("/api/security/aws-kms", params=query)).json()
    assert body["num_records"] == 0


@pytest.mark.anyio
async def test_unknown_field_or_filter_is_400_unless_ignored(client: httpx.AsyncClient) -> None:
    """ONTAP: an unknown `fields=` entry is 262197 with target `fields`; an unknown query
    argument 262179 ("Unexpected argument")."""
    cases = [
        ({"fields": "nope"}, "262197", "fields"),
        ({"nope": "1"}, "262179", "nope"),
        ({"order_by": "nope"}, "262197", "order_by"),
    ]
    for query, code, target in cases:
        response = await client.get("/api/security/aws-kms", params=query)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["target"] == target
    fields = (await client.get("/api/security/aws-kms", params={"fields": "nope"})).json()
    assert fields["error"]["message"] == 'The value "nope" is invalid for field "fields"'
    ignored = {"fields": "nope", "x": "1", "ignore_unknown_fields": "true"}
    assert (await client.get("/api/security/aws-kms", params=ignored)).status_code == 200


@pytest.mark.anyio
async def test_order_by_sorts_descending(client: httpx.AsyncClient) -> None:
    query = {"order_by": "svm.name desc", "return_timeout": "15"}
    body = (await client.get("/api/security/aws-kms", params=query)).json()
    assert [r["svm"]["name"] for r in body["records"]] == ["svm04", "svm03", "svm02", "svm01"]


async def _pages(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> list[Any]:
    pages = [(await client.get(url, params=params)).json()]
    while "next" in pages[-1]["_links"]:
        pages.append((await client.get(pages[-1]["_links"]["next"]["href"])).json())
    return pages


@pytest.mark.anyio
async def test_paging_follows_next_links_that_carry_the_query(client: httpx.AsyncClient) -> None:
    params = {"max_records": "3", "fields": "key_id", "svm.name": "svm*"}
    pages = await _pages(client, "/api/security/aws-kms", params)
    assert [p["num_records"] for p in pages] == [3, 1]
    assert "fields=key_id" in pages[0]["_links"]["next"]["href"]
    assert all("key_id" in r for p in pages for r in p["records"])


@pytest.mark.anyio
async def test_trailing_empty_page_when_configured() -> None:
    app = _app(scenario="options: {trailing_empty_page: true}")
    async with sim_client(app) as client:
        pages = await _pages(client, "/api/security/aws-kms", {"max_records": "2"})
    assert [p["num_records"] for p in pages] == [2, 2, 0]


@pytest.mark.anyio
async def test_key_stores_show_type_state_and_configuration() -> None:
    """On 9.16.1 (where `state` exists) a key store shows type, state and configuration."""
    async with sim_client(_app(version="9.16.1")) as client:
        await _key_stores_show_type_state_and_configuration(client)


async def _key_stores_show_type_state_and_configuration(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/security/key-stores", params={"fields": "*"})).json()
    record = body["records"][0]
    assert record["type"] == "aws"
    assert record["location"] == "external"
    assert record["enabled"] is True
    assert record["state"] == "active"
    kms = (await client.get("/api/security/aws-kms")).json()["records"][0]
    assert record["configuration"]["uuid"] == kms["uuid"]
    one = await client.get(f"/api/security/key-stores/{record['uuid']}")
    assert one.json()["svm"]["name"] == "svm01"
    filtered = await client.get("/api/security/key-stores", params={"state": "!active"})
    assert filtered.json()["num_records"] == 0


@pytest.mark.anyio
async def test_unknown_path_404_and_wrong_method_405(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/storage/volumes")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "4"
    wrong = await client.delete("/api/security/aws-kms")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "3"  # ONTAP's "method not allowed"
    assert "message" in wrong.json()["error"]
    gone = await client.get("/api/security/aws-kms/00000000-0000-0000-0000-000000000000")
    assert gone.status_code == 404
    assert gone.json()["error"]["target"] == "uuid"


@pytest.mark.anyio
async def test_each_address_is_its_own_cluster() -> None:
    app = _app()
    async with sim_client(app, "http://127.0.0.1:20002") as client:
        assert (await client.get("/api/cluster")).json()["name"] == "c002"
    async with sim_client(app, "http://127.0.0.1:29999") as client:
        assert (await client.get("/api/cluster")).status_code == 404


@pytest.mark.anyio
async def test_ontap_9_11_has_no_aws_kms_api() -> None:
    app = _app(scenario='faults: [{kind: version, cluster: c001, version: "9.11.1"}]')
    async with sim_client(app) as client:
        assert (await client.get("/api/cluster")).json()["version"]["major"] == 11
        response = await client.get("/api/security/aws-kms")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "4"
        stats = (await client.get("/_sim/stats")).json()
    requests = stats["clusters"]["c001"]["requests"]
    assert {"method": "GET", "path": "/api/security/aws-kms", "status": 404, "count": 1} in requests


@pytest.mark.anyio
async def test_sim_stats_shape_and_reset(client: httpx.AsyncClient) -> None:
    await client.get("/api/cluster")
    stats = (await client.get("/_sim/stats")).json()
    assert set(stats) >= {"svms", "clusters"}
    assert set(stats["svms"]) == {f"c00{c}/svm0{s}" for c in (1, 2) for s in (1, 2, 3, 4)}
    entry = stats["svms"]["c001/svm01"]
    assert entry["rekeys"] == []
    assert entry["key_version"] == 1
    assert entry["key_id"]
    cluster = stats["clusters"]["c001"]
    assert cluster["peak_concurrent_requests"] == 1
    assert cluster["requests"] == [
        {"method": "GET", "path": "/api/cluster", "status": 200, "count": 1}
    ]
    assert (await client.post("/_sim/reset")).status_code == 200
    assert (await client.get("/_sim/stats")).json()["clusters"]["c001"]["requests"] == []


@pytest.mark.anyio
async def test_lifespan_is_acknowledged() -> None:
    app = _app()
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
