"""The ONTAP client for every key manager (issue 15): the four collections, version gates,
the rekey POST per provider and operation, and error translation.

Small stateful fakes over `httpx.MockTransport`, then today's simulator for AWS."""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx
import pytest

from orchestrator.core.errors import ErrorKind, OntapError
from orchestrator.core.providers import IntendedKey, Operation, Provider, rekey_body
from orchestrator.ontap.client import OntapClient, rekey_job_description
from orchestrator.ontap.models import (
    GcpKeyRing,
    KeyManagerConfig,
    KeyStore,
    key_store_for_config,
)
from orchestrator.simulator import Fleet, FleetSpec, Scenario, SimulatorApp, SimulatorTransport

pytestmark = pytest.mark.anyio

AWS, AZURE, GCP, BARBICAN = Provider.AWS, Provider.AZURE, Provider.GCP, Provider.BARBICAN
EXT, INT = Operation.EXTERNAL, Operation.INTERNAL
BASE = "https://east-01.example.com"
COLLECTIONS = {
    "/api/security/aws-kms": AWS,
    "/api/security/azure-key-vaults": AZURE,
    "/api/security/gcp-kms": GCP,
    "/api/security/barbican-kms": BARBICAN,
}
AZURE_URL = "https://vault-1.vault.azure.net/keys/ontap-kek"


def _svm(name: str) -> dict[str, Any]:
    return {"scope": "svm", "svm": {"name": name, "uuid": f"u-{name}"}}


def _health(reach_field: str, reachable: bool) -> dict[str, Any]:
    return {
        "state": {"cluster_state": reachable, "code": "0" if reachable else "346758"},
        reach_field: {"reachable": reachable, "message": "" if reachable else "down"},
    }


RECORDS: dict[Provider, list[dict[str, Any]]] = {
    AWS: [
        {"uuid": "a1", "key_id": "alias/a1", "region": "us-east-1"}
        | _svm("s-aws")
        | _health("amazon_reachability", True)
    ],
    AZURE: [
        {"uuid": "z1", "key_id": AZURE_URL, "client_id": "c"}
        | _svm("s-az")
        | _health("azure_reachability", False)
        | {
            "ekmip_reachability": [
                {"node": {"name": "n1"}, "reachable": True, "code": "0"},
                {"node": {"name": "n2"}, "reachable": False, "code": "65537915"},
            ]
        },
        {"uuid": "z2", "key_id": AZURE_URL} | _svm("s-az2"),
    ],
    GCP: [
        {
            "uuid": "g1",
            "key_name": "kek-1",
            "project_id": "proj-1",
            "key_ring_location": "global",
            "key_ring_name": "ring-1",
        }
        | _svm("s-gcp")
        | _health("google_reachability", True)
    ],
    BARBICAN: [
        {"uuid": "b1", "key_id": "https://barbican.example.com/v1/secrets/k1"}
        | _svm("s-bb")
        | _health("barbican_reachability", True)
    ],
}


class FakeCluster:
    """The four collections (paged by `max_records`), and the rekey endpoints.

    Records every request; rekeys answer 202 with a job unless `fail` names an ONTAP code.
    """

    def __init__(self, *, fail: dict[str, tuple[int, str]] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.fail = fail or {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if request.method == "GET" and path in COLLECTIONS:
            return self._page(request, RECORDS[COLLECTIONS[path]])
        if request.method == "GET":
            collection, _, uuid = path.rpartition("/")
            found = [
                r for r in RECORDS.get(COLLECTIONS.get(collection, AWS), []) if r["uuid"] == uuid
            ]
            return httpx.Response(200, json=found[0]) if found else _error(404, "4", "no")
        if path in self.fail:
            status, code = self.fail[path]
            return _error(status, code, f"failed with {code}")
        return httpx.Response(202, json={"job": {"uuid": "j-" + path.rsplit("/", 2)[-2]}})

    def _page(self, request: httpx.Request, records: list[dict[str, Any]]) -> httpx.Response:
        size = int(request.url.params.get("max_records", "1"))
        start = int(request.url.params.get("start", "0"))
        body: dict[str, Any] = {"records": records[start : start + size], "_links": {}}
        if start + size < len(records):
            query = request.url.params.set("start", str(start + size))
            body["_links"]["next"] = {"href": f"{request.url.path}?{query}"}
        return httpx.Response(200, json=body)

    def paths(self, method: str = "GET") -> list[str]:
        return [r.url.path for r in self.requests if r.method == method]


def _error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def make_client(handler: Any) -> OntapClient:
    transport = httpx.MockTransport(handler)
    return OntapClient("east-01", httpx.AsyncClient(base_url=BASE, transport=transport))


def config(provider: Provider, uuid: str = "u1") -> KeyManagerConfig:
    return KeyManagerConfig(
        provider, uuid, "svm", "s1", "u-s1", "k", None, None, None, None, None, None, None, ()
    )


# -- discovery -------------------------------------------------------------------------


async def test_lists_every_provider_with_its_fields_and_health() -> None:
    """One call reads the four collections (9.17) and parses each record's own fields."""
    fake = FakeCluster()
    found = await make_client(fake).list_key_managers(list(Provider), version=(9, 17, 1))
    by_uuid = {c.uuid: c for c in found}
    assert [c.provider for c in found] == [AWS, AZURE, AZURE, GCP, BARBICAN]
    assert by_uuid["a1"].region == "us-east-1"
    assert by_uuid["a1"].kms_reachable is True
    azure = by_uuid["z1"]
    assert (azure.key_id, azure.kms_reachable, azure.kms_message) == (AZURE_URL, False, "down")
    assert (azure.cluster_state, azure.state_code) == (False, "346758")
    assert azure.unreachable_nodes == ("n2",)
    assert (azure.target_svm, azure.key_store_type) == ("s-az", "akv")
    assert by_uuid["z2"].kms_reachable is None  # no health in that record
    gcp = by_uuid["g1"]
    assert (gcp.key_id, gcp.gcp) == ("kek-1", GcpKeyRing("proj-1", "global", "ring-1"))
    assert (by_uuid["b1"].key_store_type, by_uuid["b1"].kms_reachable) == ("barbican", True)


async def test_asks_each_collection_for_its_advanced_fields() -> None:
    """Health fields are named per provider (ONTAP omits advanced fields otherwise)."""
    fake = FakeCluster()
    await make_client(fake).list_key_managers(list(Provider), version=(9, 17, 1))
    fields = {r.url.path: r.url.params["fields"].split(",") for r in fake.requests}
    assert "amazon_reachability" in fields["/api/security/aws-kms"]
    assert {"key_id", "azure_reachability", "ekmip_reachability", "state"} <= set(
        fields["/api/security/azure-key-vaults"]
    )
    assert {"key_name", "project_id", "key_ring_location", "key_ring_name"} <= set(
        fields["/api/security/gcp-kms"]
    )
    assert "google_reachability" in fields["/api/security/gcp-kms"]
    barbican = fields["/api/security/barbican-kms"]
    assert "barbican_reachability" in barbican
    assert "ekmip_reachability" not in barbican  # Barbican records have no per-node view


async def test_without_health_no_advanced_field_is_asked() -> None:
    """`health=False` (a run, not a plan) asks only for the identifying fields."""
    fake = FakeCluster()
    await make_client(fake).list_key_managers([AZURE, GCP], version=(9, 14, 1), health=False)
    for request in fake.requests:
        assert "state" not in request.url.params["fields"].split(",")
        assert "reachability" not in request.url.params["fields"]


async def test_follows_paging_in_every_collection() -> None:
    """Azure's two records come on two pages (page size 1): both are read."""
    fake = FakeCluster()
    found = await make_client(fake).list_key_managers([AZURE], version=(9, 14, 1), page_size=1)
    assert [c.uuid for c in found] == ["z1", "z2"]
    assert fake.paths() == ["/api/security/azure-key-vaults"] * 2


async def test_a_collection_the_version_lacks_is_skipped_without_a_request() -> None:
    """On 9.16 Barbican's collection does not exist: no GET to it, no error; on 9.17 yes."""
    fake = FakeCluster()
    found = await make_client(fake).list_key_managers([AWS, BARBICAN], version=(9, 16, 1))
    assert [c.provider for c in found] == [AWS]
    assert fake.paths() == ["/api/security/aws-kms"]
    fake = FakeCluster()
    await make_client(fake).list_key_managers([BARBICAN], version=(9, 17, 0))
    assert fake.paths() == ["/api/security/barbican-kms"]


async def test_only_the_wanted_providers_are_read_and_svm_filter_is_passed() -> None:
    """`providers: [gcp]` reads one collection; SVM names go as ONTAP's OR filter."""
    fake = FakeCluster()
    await make_client(fake).list_key_managers([GCP], version=(9, 15, 1), svm_names=["a", "b"])
    assert fake.paths() == ["/api/security/gcp-kms"]
    assert fake.requests[0].url.params["svm.name"] == "a|b"


async def test_a_record_without_its_key_field_is_a_protocol_error() -> None:
    """A GCP record without key_name is not ONTAP's shape: PROTOCOL, naming the field."""

    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"records": [{"uuid": "g1", "key_id": "x"}]})

    with pytest.raises(OntapError) as caught:
        await make_client(app).list_key_managers([GCP], version=(9, 14, 1))
    assert caught.value.kind is ErrorKind.PROTOCOL
    assert caught.value.operation == "list_gcp_kms"
    assert "key_name" in caught.value.message


async def test_get_key_manager_reads_one_record_of_its_provider() -> None:
    """The read-back goes to the provider's instance path with its fields."""
    fake = FakeCluster()
    got = await make_client(fake).get_key_manager(GCP, "g1")
    assert (got.provider, got.key_id) == (GCP, "kek-1")
    assert fake.paths() == ["/api/security/gcp-kms/g1"]
    assert "google_reachability" in fake.requests[0].url.params["fields"]


# -- the rekey POST ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "operation", "key", "path", "body"),
    [
        (
            AWS,
            EXT,
            IntendedKey("alias/new"),
            "/api/security/aws-kms/u1/rekey-external",
            {"key_id": "alias/new"},
        ),
        (AWS, INT, None, "/api/security/aws-kms/u1/rekey-internal", None),
        (
            AZURE,
            EXT,
            IntendedKey(AZURE_URL),
            "/api/security/azure-key-vaults/u1/rekey-external",
            {"key_id": AZURE_URL},
        ),
        (AZURE, INT, None, "/api/security/azure-key-vaults/u1/rekey-internal", None),
        (
            GCP,
            EXT,
            IntendedKey("kek-2", key_ring_name="ring-2"),
            "/api/security/gcp-kms/u1/rekey-external",
            {"key_name": "kek-2", "key_ring_name": "ring-2"},
        ),
        (GCP, INT, None, "/api/security/gcp-kms/u1/rekey-internal", None),
        (BARBICAN, INT, None, "/api/security/barbican-kms/u1/rekey-internal", None),
    ],
)
async def test_rekey_posts_to_the_endpoint_with_its_body_and_return_timeout(
    provider: Provider,
    operation: Operation,
    key: IntendedKey | None,
    path: str,
    body: dict[str, str] | None,
) -> None:
    """Each pair POSTs to its path with exactly its body (none for internal), and
    `return_timeout` is always sent; the 202's job is returned for the engine."""
    fake = FakeCluster()
    client = make_client(fake)
    sent = rekey_body(provider, operation, key)
    submission = await client.rekey(config(provider), operation, sent, return_timeout=0)
    (request,) = fake.requests
    assert (request.method, request.url.path) == ("POST", path)
    assert request.url.params["return_timeout"] == "0"
    if body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == body
    assert (submission.status, submission.job_uuid) == (202, "j-u1")
    assert rekey_job_description("u1", provider, operation) == f"POST {path}"


async def test_rekey_error_body_is_translated_once_with_the_operation() -> None:
    """ONTAP's 65537559 on rekey-internal: HTTP kind, the code, operation rekey_internal."""
    fake = FakeCluster(fail={"/api/security/azure-key-vaults/u1/rekey-internal": (400, "65537559")})
    with pytest.raises(OntapError) as caught:
        await make_client(fake).rekey(config(AZURE), INT, None, return_timeout=30)
    err = caught.value
    assert (err.kind, err.status, err.code) == (ErrorKind.HTTP, 400, "65537559")
    assert (err.operation, err.cluster, err.maybe_sent) == ("rekey_internal", "east-01", False)


async def test_a_read_timeout_on_the_rekey_may_have_been_sent() -> None:
    """A timeout after an internal rekey POST went out is SENT and maybe_sent."""

    def app(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(OntapError) as caught:
        await make_client(app).rekey(config(GCP), INT, None, return_timeout=30)
    assert (caught.value.kind, caught.value.maybe_sent) == (ErrorKind.SENT, True)


async def test_a_202_without_a_job_is_a_protocol_error_that_may_have_taken_effect() -> None:
    """The rekey answer must name a job when it is 202: else PROTOCOL, maybe_sent."""

    def app(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, json={})

    with pytest.raises(OntapError) as caught:
        await make_client(app).rekey(config(BARBICAN), INT, None, return_timeout=5)
    assert (caught.value.kind, caught.value.maybe_sent) == (ErrorKind.PROTOCOL, True)


@pytest.mark.parametrize(
    ("provider", "operation", "body", "timeout", "words"),
    [
        (BARBICAN, EXT, {"key_id": "k"}, 30, "no rekey-external"),
        (AWS, INT, {"key_id": "k"}, 30, "takes no body"),
        (AZURE, EXT, None, 30, "takes a body"),
        (AWS, EXT, {"key_id": "k"}, 121, "return_timeout"),
    ],
)
async def test_a_request_ontap_cannot_take_is_never_sent(
    provider: Provider,
    operation: Operation,
    body: dict[str, str] | None,
    timeout: int,
    words: str,
) -> None:
    """A pair ONTAP lacks, a body that does not fit the operation, a return_timeout out of
    0..120: ValueError (a bug in the caller) and no request."""
    fake = FakeCluster()
    with pytest.raises(ValueError, match=words):
        await make_client(fake).rekey(config(provider), operation, body, return_timeout=timeout)
    assert fake.requests == []


def test_key_store_matches_by_svm_and_provider_type() -> None:
    """An SVM's key store record is the one of its provider's type (akv for Azure)."""
    stores = [
        KeyStore("k1", "s1", "svm", "aws", False, "disabled"),
        KeyStore("k2", "s1", "svm", "akv", True, "active"),
        KeyStore("k3", None, "cluster", "akv", True, "active"),
    ]
    assert key_store_for_config(config(AZURE), stores) == stores[1]
    assert key_store_for_config(config(AWS), stores) == stores[0]
    assert key_store_for_config(config(GCP), stores) is None


# -- today's simulator (AWS) -------------------------------------------------------------


def _sim() -> tuple[Fleet, httpx.AsyncClient]:
    scenario = "options: {job_duration: {min_s: 0.001, max_s: 0.001}}"
    fleet = Fleet(FleetSpec.generate(1, 2), Scenario.from_yaml(scenario), seed=3)
    fleet.bind_default()
    http = httpx.AsyncClient(
        transport=SimulatorTransport(SimulatorApp(fleet)),
        base_url="http://127.0.0.1:20001",
        auth=("admin", "netapp-sim"),
    )
    return fleet, http


async def test_against_the_simulator_aws_discovery_matches_the_aws_method() -> None:
    """`list_key_managers([aws])` finds what `list_aws_kms` finds, field for field."""
    _, http = _sim()
    client = OntapClient("c001", http)
    info = await client.cluster_info()
    neutral = await client.list_key_managers([AWS], version=info.version)
    legacy = await client.list_aws_kms()
    assert neutral == legacy  # one record type for every provider (issue 14)
    assert len(neutral) == 2
    await client.aclose()


async def test_against_the_simulator_an_aws_rekey_lands_once_with_the_key() -> None:
    """`rekey(config, external, body)` on the simulator: one rekey with the sent key id in
    the ground truth, and the read-back shows it."""
    fleet, http = _sim()
    client = OntapClient("c001", http)
    info = await client.cluster_info()
    target = (await client.list_key_managers([AWS], version=info.version))[0]
    body = rekey_body(AWS, EXT, IntendedKey("alias/rotated"))
    submission = await client.rekey(target, EXT, body, return_timeout=30)
    assert submission.status in (200, 201, 202)
    rekeys = fleet.stats()["svms"][f"c001/{target.target_svm}"]["rekeys"]
    assert [r["key_id"] for r in rekeys] == ["alias/rotated"]
    if not submission.finished and submission.job_uuid:
        await _wait_for(client, submission.job_uuid)
    assert (await client.get_key_manager(AWS, target.uuid)).key_id == "alias/rotated"
    await client.aclose()


async def _wait_for(client: OntapClient, job_uuid: str) -> None:
    """Poll the job until it ends (generous bound: no timing assertion)."""
    for _ in range(1000):
        if (await client.get_job(job_uuid)).is_terminal:
            return
        await anyio.sleep(0.01)
    raise AssertionError(f"job {job_uuid} never ended")
