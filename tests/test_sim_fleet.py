"""Fleet definitions, scenario parsing, bindings, lazy state, and the stats method."""

from __future__ import annotations

import pydantic
import pytest

from orchestrator.simulator import Fleet, FleetSpec, Scenario
from orchestrator.simulator.query import predicate

FLEET_FILE = """
defaults: {version: "9.14.1", password: s3cret}
generate: {clusters: 2, svms: 3}
clusters:
  - name: east1
    svms: [fin01, hr01]
    version: "9.11.1"
    nodes: 4
    include_cluster_scope: true
"""


def test_generate_names_clusters_and_svms() -> None:
    spec = FleetSpec.generate(3, 12, username="u", password="p")
    assert [c.name for c in spec.clusters] == ["c001", "c002", "c003"]
    assert spec.clusters[0].svms[:2] == ["svm01", "svm02"]
    assert spec.clusters[0].username == "u"
    assert spec.clusters[0].password == "p"


def test_fleet_file_combines_defaults_generated_and_explicit_clusters() -> None:
    spec = FleetSpec.from_yaml(FLEET_FILE)
    assert [c.name for c in spec.clusters] == ["c001", "c002", "east1"]
    east = spec.clusters[2]
    assert east.version == "9.11.1"
    assert east.nodes == 4
    assert east.include_cluster_scope
    assert all(c.password == "s3cret" for c in spec.clusters)


@pytest.mark.parametrize(
    "text",
    [
        "clusters: [{name: a, svms: [x]}, {name: a, svms: [y]}]",
        "clusters: [{name: a, svms: [x, x]}]",
        "clusters: [{name: a, svms: [x], colour: red}]",
        "bogus: 1",
    ],
)
def test_fleet_file_errors(text: str) -> None:
    with pytest.raises((pydantic.ValidationError, ValueError)):
        FleetSpec.from_yaml(text)


@pytest.mark.parametrize(
    "text",
    [
        "faults: [{kind: nope}]",
        "faults: [{kind: rekey_error}]",  # needs a code
        "faults: [{kind: version}]",
        "faults: [{kind: keystore_state, state: melting}]",
        "faults: [{kind: drop_before, rate: 2}]",
        "options: {job_duration: {min_s: 2, max_s: 1}}",
        "options: {colour: red}",
    ],
)
def test_scenario_errors(text: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        Scenario.from_yaml(text)


def test_scenario_seed_is_the_default_seed() -> None:
    fleet = Fleet(FleetSpec.generate(1, 1), Scenario.from_yaml("seed: 42"))
    assert fleet.seed == 42
    assert Fleet(FleetSpec.generate(1, 1), Scenario.from_yaml("seed: 42"), seed=5).seed == 5


def test_bind_default_and_lookup_by_address() -> None:
    fleet = Fleet(FleetSpec.generate(3, 1))
    fleet.bind_default(base_port=30000)
    cluster = fleet.cluster_at(("127.0.0.1", 30002))
    assert cluster is not None
    assert cluster.name == "c002"
    assert fleet.address_of("c003") == ("127.0.0.1", 30003)
    assert fleet.cluster_at(None) is None
    with pytest.raises(KeyError):
        fleet.bind("zzz", "127.0.0.1", 1)


def test_uuids_and_key_ids_are_stable_across_fleets() -> None:
    one, two = Fleet(FleetSpec.generate(1, 2)), Fleet(FleetSpec.generate(1, 2), seed=9)
    assert [c.uuid for c in one.clusters[0].configs] == [c.uuid for c in two.clusters[0].configs]
    assert one.stats()["svms"].keys() == two.stats()["svms"].keys()


def test_a_large_fleet_is_built_lazily() -> None:
    fleet = Fleet(FleetSpec.generate(1000, 50))
    assert len(fleet.clusters) == 1000
    assert "svms" not in vars(fleet.clusters[500])  # not built until used
    assert len(fleet.clusters[500].configs) == 50


def test_reset_keeps_bindings() -> None:
    fleet = Fleet(FleetSpec.generate(2, 1))
    fleet.bind_default()
    fleet.clusters[0].failed_logins = 3
    fleet.reset()
    cluster = fleet.cluster_at(("127.0.0.1", 20001))
    assert cluster is fleet.clusters[0]
    assert cluster.failed_logins == 0


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("a*", "abc", True),
        ("*c", "abc", True),
        ("a*", "bac", False),
        ("!a", "a", False),
        ("x|abc", "abc", True),
        ("<5", "3", True),
        (">=10", "9", False),
        ("1..3", "2", True),
        ("1..3", "4", False),
        ("true", "true", True),
    ],
)
def test_query_syntax(pattern: str, value: str, expected: bool) -> None:
    assert predicate(pattern)(value) is expected


@pytest.mark.parametrize(
    ("spans", "peak"),
    [
        ([], 0),
        ([(0.0, 1.0)], 1),
        ([(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)], 2),
        ([(0.0, 1.0), (1.0, 2.0)], 1),
        ([(0.0, 5.0), (1.0, 2.0), (1.5, 3.0)], 3),
    ],
)
def test_peak_overlap_counts_spans_running_at_one_instant(
    spans: list[tuple[float, float]], peak: int
) -> None:
    """A span that ends exactly when another starts does not overlap it."""
    from orchestrator.simulator.fleet import peak_overlap

    assert peak_overlap(spans) == peak
