"""NetApp's `netapp-ontap` client, unchanged: `AzureKeyVault`, `GcpKms`, `Barbican` and
`AwsKms` collections and their `rekey_external` / `rekey_internal` against the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

# The client exports these lazily; its type information does not show them.
from netapp_ontap import HostConnection  # type: ignore[attr-defined]
from netapp_ontap.error import NetAppRestError
from netapp_ontap.resources import (  # type: ignore[attr-defined]
    AwsKms,
    AzureKeyVault,
    Barbican,
    GcpKms,
)

from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator

SCENARIO = "options: {job_duration: {min_s: 0.05, max_s: 0.1}}"
POLL = {"poll": True, "poll_interval": 0.05, "poll_timeout": 10}
RESOURCES: dict[str, Any] = {
    "aws": AwsKms,
    "azure": AzureKeyVault,
    "gcp": GcpKms,
    "barbican": Barbican,
}
SVM = {"aws": "svm01", "azure": "svm02", "gcp": "svm03", "barbican": "svm04"}


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulation]:
    """c001 on 9.17.1 with one SVM per key manager (aws, azure, gcp, barbican); c002 on
    9.16.1, where Barbican does not exist yet."""
    spec = FleetSpec.generate(
        2, 4, versions=["9.17.1", "9.16.1"], key_managers=["aws", "azure", "gcp", "barbican"]
    )
    with running_simulator(spec, Scenario.from_yaml(SCENARIO)) as simulation:
        yield simulation


def connect(simulation: Simulation, cluster: str = "c001") -> HostConnection:
    url = urlsplit(simulation.urls[cluster])
    return HostConnection(
        url.hostname,
        username="admin",
        password="netapp-sim",
        port=url.port or 443,
        scheme=url.scheme,
        verify=False,
    )


def _uuid(provider: str) -> str:
    (record,) = RESOURCES[provider].get_collection(**{"svm.name": SVM[provider]})
    return str(record.uuid)


def test_the_collections_list_their_own_svms(simulator: Simulation) -> None:
    with connect(simulator):
        azure = list(AzureKeyVault.get_collection(fields="svm,key_id"))
        gcp = list(GcpKms.get_collection(fields="svm,key_name,project_id"))
        barbican = list(Barbican.get_collection(fields="svm,key_id"))
    assert [r.svm.name for r in azure] == ["svm02"]
    assert azure[0].key_id.startswith("https://")
    assert [(r.svm.name, r.project_id) for r in gcp] == [("svm03", "sim-project")]
    assert [r.svm.name for r in barbican] == ["svm04"]


def test_azure_rekey_external(simulator: Simulation) -> None:
    new = "https://c001-vault.vault.azure.net/keys/svm02/v2"
    with connect(simulator):
        AzureKeyVault(uuid=_uuid("azure")).rekey_external(body={"key_id": new}, **POLL)
    truth = simulator.stats()["svms"]["c001/svm02"]
    assert truth["key_id"] == new
    assert [(r["provider"], r["operation"]) for r in truth["rekeys"]] == [("azure", "external")]


def test_gcp_rekey_external(simulator: Simulation) -> None:
    body = {"key_name": "key-rotated", "key_ring_name": "sim-ring"}
    with connect(simulator):
        GcpKms(uuid=_uuid("gcp")).rekey_external(body=body, **POLL)
    truth = simulator.stats()["svms"]["c001/svm03"]
    assert truth["key_id"] == "key-rotated"
    assert [(r["provider"], r["operation"]) for r in truth["rekeys"]] == [("gcp", "external")]


def test_gcp_rekey_external_refuses_a_slash_in_key_name(simulator: Simulation) -> None:
    with connect(simulator), pytest.raises(NetAppRestError) as caught:
        GcpKms(uuid=_uuid("gcp")).rekey_external(body={"key_name": "a/b"}, **POLL)
    body = caught.value.response_body
    assert body is not None
    assert body["error"]["code"] == "65537753"


@pytest.mark.parametrize("provider", ["aws", "azure", "gcp", "barbican"])
def test_rekey_internal(simulator: Simulation, provider: str) -> None:
    target = f"c001/{SVM[provider]}"
    before = simulator.stats()["svms"][target]
    with connect(simulator):
        RESOURCES[provider](uuid=_uuid(provider)).rekey_internal(**POLL)
    truth = simulator.stats()["svms"][target]
    assert truth["key_id"] == before["key_id"]
    assert truth["rekeys"][-1]["operation"] == "internal"
    assert truth["rekeys"][-1]["outcome"] == "success"


def test_barbican_is_absent_before_9_17(simulator: Simulation) -> None:
    with connect(simulator, "c002"), pytest.raises(NetAppRestError) as caught:
        list(Barbican.get_collection())
    assert caught.value.status_code == 404
