"""NetApp's official `netapp-ontap` client, unchanged, against the simulator on loopback.

The client is synchronous (requests), so the simulator runs in a background thread
(`running_simulator`). What the client cannot show is checked on `/_sim/stats`, the
simulator's ground truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

# The client exports these lazily; its type information does not show them.
from netapp_ontap import HostConnection  # type: ignore[attr-defined]
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import AwsKms, Cluster, Job  # type: ignore[attr-defined]

from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator

PASSWORD = "netapp-sim"
SCENARIO = """
options:
  job_duration: {min_s: 0.05, max_s: 0.1}
faults:
  - {kind: keys_in_admin_svm, cluster: c001, svm: svm02}
  - {kind: job_failure, cluster: c001, svm: svm03, code: 65537919}
"""
POLL = {"poll": True, "poll_interval": 0.05, "poll_timeout": 10}


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulation]:
    """Two clusters of seven SVMs over plain HTTP, with a few rekey faults on c001."""
    spec = FleetSpec.generate(2, 7, password=PASSWORD)
    with running_simulator(spec, Scenario.from_yaml(SCENARIO)) as simulation:
        yield simulation


def connect(
    simulation: Simulation,
    cluster: str = "c001",
    password: str = PASSWORD,
    verify: bool | str = False,
) -> HostConnection:
    """A HostConnection to one simulated cluster, the way a user would build it."""
    url = urlsplit(simulation.urls[cluster])
    return HostConnection(
        url.hostname,
        username="admin",
        password=password,
        port=url.port or 443,
        scheme=url.scheme,
        verify=verify,  # type: ignore[arg-type]  # requests takes a CA bundle path too
    )


def kms_uuid(svm: str) -> str:
    """The uuid of an SVM's AWS KMS configuration, looked up with the client."""
    (record,) = AwsKms.get_collection(**{"svm.name": svm})
    return str(record.uuid)


def test_get_collection_follows_next_links_across_pages(simulator: Simulation) -> None:
    """max_records=2 over seven SVMs: the client pages through every record."""
    with connect(simulator):
        records = list(AwsKms.get_collection(fields="svm,key_id,scope", max_records=2))
    assert sorted(r.svm.name for r in records) == [f"svm0{i}" for i in range(1, 8)]
    assert {r.scope for r in records} == {"svm"}
    stats = simulator.stats()["clusters"]["c001"]["requests"]
    pages = sum(r["count"] for r in stats if r["path"] == "/api/security/aws-kms")
    assert pages >= 4


def test_get_one_configuration_with_the_advanced_health_fields(simulator: Simulation) -> None:
    """state, amazon_reachability and ekmip_reachability come back when named."""
    with connect(simulator, "c002"):
        kms = AwsKms(uuid=kms_uuid("svm01"))
        kms.get(fields="state,amazon_reachability,ekmip_reachability")
    assert kms.state.cluster_state is True
    assert kms.amazon_reachability.reachable is True
    assert len(kms.ekmip_reachability) == 2  # one per node


def test_cluster_version_reads(simulator: Simulation) -> None:
    """GET /api/cluster gives the name and the version the orchestrator checks."""
    with connect(simulator, "c002"):
        cluster = Cluster()
        cluster.get(fields="name,version")
    assert cluster.name == "c002"
    assert (cluster.version.generation, cluster.version.major) >= (9, 12)


def test_rekey_external_with_polling_changes_the_key(simulator: Simulation) -> None:
    """rekey_external(poll=True) succeeds; the ground truth records the new key id."""
    with connect(simulator, "c002"):
        kms = AwsKms(uuid=kms_uuid("svm04"))
        response = kms.rekey_external(body={"key_id": "arn:aws:kms:k-new"}, **POLL)
    assert response.http_response.status_code in {200, 201, 202}
    truth = simulator.stats()["svms"]["c002/svm04"]
    assert truth["key_id"] == "arn:aws:kms:k-new"
    assert truth["key_version"] == 2
    assert [r["outcome"] for r in truth["rekeys"]] == ["success"]


def test_a_refused_rekey_carries_ontaps_code(simulator: Simulation) -> None:
    """A synchronous fault: NetAppRestError whose response_body has ONTAP's error code."""
    with connect(simulator), pytest.raises(NetAppRestError) as caught:
        AwsKms(uuid=kms_uuid("svm02")).rekey_external(body={"key_id": "k"}, **POLL)
    body = caught.value.response_body
    assert body is not None
    assert body["error"]["code"] == "65537547"
    assert caught.value.status_code == 400
    assert simulator.stats()["svms"]["c001/svm02"]["key_version"] == 1


def test_a_failing_job_raises_job_failed(simulator: Simulation) -> None:
    """A job that ends in failure: the client's error says "Job failed"."""
    with connect(simulator), pytest.raises(NetAppRestError, match="Job failed"):
        AwsKms(uuid=kms_uuid("svm03")).rekey_external(body={"key_id": "k"}, **POLL)
    rekeys = simulator.stats()["svms"]["c001/svm03"]["rekeys"]
    assert [r["outcome"] for r in rekeys] == ["failure"]


def test_bad_credentials_give_401(simulator: Simulation) -> None:
    """A wrong password: status 401, counted as a failed login."""
    before = simulator.stats()["clusters"]["c002"]["failed_logins"]
    with connect(simulator, "c002", password="wrong"), pytest.raises(NetAppRestError) as caught:
        Cluster().get()
    assert caught.value.status_code == 401
    assert simulator.stats()["clusters"]["c002"]["failed_logins"] == before + 1


def test_job_collection_finds_the_rekey_jobs(simulator: Simulation) -> None:
    """Job.get_collection(description="POST /api/security/aws-kms/*") lists the rekeys."""
    with connect(simulator, "c002"):
        uuid = kms_uuid("svm05")
        AwsKms(uuid=uuid).rekey_external(body={"key_id": "k5"}, **POLL)
        jobs = list(
            Job.get_collection(
                description="POST /api/security/aws-kms/*", fields="description,state"
            )
        )
    descriptions = {job.description for job in jobs}
    assert f"POST /api/security/aws-kms/{uuid}/rekey-external" in descriptions
    assert {job.state for job in jobs} <= {"queued", "running", "success", "failure"}


def test_the_client_over_tls_verifies_with_the_ca_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTPS with verification on: the client trusts the written CA bundle, no more."""
    # requests lets these variables override a session's own CA bundle.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with running_simulator(FleetSpec.generate(2, 2), tls=True) as simulation:
        for name in simulation.urls:
            with connect(simulation, name, verify=str(simulation.ca_pem_path)):
                cluster = Cluster()
                cluster.get(fields="name")
            assert cluster.name == name


def test_the_client_with_a_certificate_logs_in_by_cn(monkeypatch: pytest.MonkeyPatch) -> None:
    """Certificate auth: a client certificate with CN = admin, no password."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with running_simulator(FleetSpec.generate(1, 1), tls=True) as simulation:
        cert = simulation.issue_client_cert("admin")
        url = urlsplit(simulation.urls["c001"])
        connection = HostConnection(
            url.hostname,
            cert=str(cert.cert_path),
            key=str(cert.key_path),
            port=url.port or 443,
            verify=str(simulation.ca_pem_path),  # type: ignore[arg-type]
        )
        with connection:
            cluster = Cluster()
            cluster.get(fields="name")
    assert cluster.name == "c001"
