"""NetApp's `netapp-ontap` client, unchanged, against every version personality: what a
version has works; what it lacks fails the way it fails on ONTAP (a 400 for an unknown
field, a 404 for an API the version does not have)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

# The client exports these lazily; its type information does not show them.
from netapp_ontap import HostConnection  # type: ignore[attr-defined]
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import (  # type: ignore[attr-defined]
    AwsKms,
    Cluster,
    SecurityKeyManager,
    SecurityKeystore,
)

from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator

VERSIONS = ["9.12.1", "9.13.1", "9.14.1", "9.15.1", "9.16.1", "9.17.1"]
CLUSTER = {v: f"c00{i}" for i, v in enumerate(VERSIONS, start=1)}
SCENARIO = """
options: {job_duration: {min_s: 0.05, max_s: 0.1}}
faults:
  - {kind: keys_in_admin_svm, svm: svm03}
"""
POLL = {"poll": True, "poll_interval": 0.05, "poll_timeout": 10}


def _at_least(version: str, gate: str) -> bool:
    return tuple(map(int, version.split("."))) >= tuple(map(int, gate.split(".")))


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulation]:
    """Six clusters, one per version, three SVMs each."""
    spec = FleetSpec.generate(len(VERSIONS), 3, versions=VERSIONS)
    with running_simulator(spec, Scenario.from_yaml(SCENARIO)) as simulation:
        yield simulation


def connect(simulation: Simulation, version: str) -> HostConnection:
    url = urlsplit(simulation.urls[CLUSTER[version]])
    return HostConnection(
        url.hostname,
        username="admin",
        password="netapp-sim",
        port=url.port or 443,
        scheme=url.scheme,
        verify=False,
    )


def kms_uuid(svm: str) -> str:
    (record,) = AwsKms.get_collection(**{"svm.name": svm})
    return str(record.uuid)


@pytest.mark.parametrize("version", VERSIONS)
def test_cluster_version_and_aws_kms_collection(simulator: Simulation, version: str) -> None:
    with connect(simulator, version):
        cluster = Cluster()
        cluster.get(fields="version")
        records = list(AwsKms.get_collection(fields="svm,key_id,encryption_context"))
    assert cluster.version.major == int(version.split(".")[1])
    assert [r.svm.name for r in records] == ["svm01", "svm02", "svm03"]


@pytest.mark.parametrize("version", VERSIONS)
def test_rekey_external_with_polling_works_on_every_version(
    simulator: Simulation, version: str
) -> None:
    """202 (9.12/9.13: always) or 201: the client follows the job to success."""
    with connect(simulator, version):
        AwsKms(uuid=kms_uuid("svm01")).rekey_external(body={"key_id": f"k-{version}"}, **POLL)
    status = 201 if _at_least(version, "9.14.1") else 202
    truth = simulator.stats()["svms"][f"{CLUSTER[version]}/svm01"]
    assert truth["key_id"] == f"k-{version}"
    assert [(r["outcome"], r["status"]) for r in truth["rekeys"]] == [("success", status)]


@pytest.mark.parametrize("version", VERSIONS)
def test_key_store_state_only_from_9_16_1(simulator: Simulation, version: str) -> None:
    with connect(simulator, version):
        if _at_least(version, "9.16.1"):
            stores = list(SecurityKeystore.get_collection(fields="state,enabled"))
            assert {s.state for s in stores} == {"active"}
            return
        with pytest.raises(NetAppRestError) as caught:
            list(SecurityKeystore.get_collection(fields="state"))
    assert caught.value.status_code == 400
    body = caught.value.response_body
    assert body is not None
    assert (body["error"]["code"], body["error"]["target"]) == ("262197", "fields")


@pytest.mark.parametrize("version", VERSIONS)
def test_key_store_instance_and_enabled_from_9_14(simulator: Simulation, version: str) -> None:
    with connect(simulator, version):
        uuid = kms_uuid("svm02")
        store = SecurityKeystore(uuid=uuid)
        if _at_least(version, "9.14.1"):
            store.get()
            assert store.configuration.uuid == uuid
            assert store.configuration.name == "default"
            fresh = SecurityKeystore(uuid=uuid)
            fresh.enabled = True  # the client sends only what changed after construction
            fresh.patch()
            return
        with pytest.raises(NetAppRestError) as caught:
            store.get()
        assert caught.value.status_code == 404
        with pytest.raises(NetAppRestError) as wrong:
            list(SecurityKeystore.get_collection(fields="enabled"))
        assert wrong.value.status_code == 400


@pytest.mark.parametrize("version", VERSIONS)
def test_migrate_then_rekey(simulator: Simulation, version: str) -> None:
    """A rekey refused with 65537547 succeeds after SecurityKeyManager.migrate."""
    with connect(simulator, version):
        uuid = kms_uuid("svm03")
        with pytest.raises(NetAppRestError) as refused:
            AwsKms(uuid=uuid).rekey_external(body={"key_id": "k"}, **POLL)
        body = refused.value.response_body
        assert body is not None
        assert body["error"]["code"] == "65537547"
        (manager,) = SecurityKeyManager.get_collection()
        SecurityKeyManager(uuid=manager.uuid).migrate(body={"uuid": uuid}, **POLL)
        AwsKms(uuid=uuid).rekey_external(body={"key_id": "k"}, **POLL)
    truth = simulator.stats()["svms"][f"{CLUSTER[version]}/svm03"]
    assert [r["outcome"] for r in truth["rekeys"]] == ["success"]
