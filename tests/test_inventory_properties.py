"""Properties of resolution (Hypothesis): order independence, exactly one auth method."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.config.checks import reference_issues
from orchestrator.config.resolve import resolve
from orchestrator.core.inventory import BasicAuth, CertAuth, ClusterSpec, TokenAuth
from orchestrator.core.inventory_model import InventoryModel

GROUP_NAMES = [f"g{i}" for i in range(5)]
PATH = Path("/fleet/inventory.yaml")

auths = st.one_of(
    st.builds(lambda env: {"username": "u", "password_env": env}, st.sampled_from(["P1", "P2"])),
    st.builds(lambda f: {"username": "u", "password_file": f}, st.sampled_from(["a", "/b"])),
    st.just({"client_cert": "c.pem", "client_key": "c.key"}),
    st.builds(lambda env: {"token_env": env}, st.sampled_from(["T1", "T2"])),
)
settings_fields: dict[str, st.SearchStrategy[Any]] = {
    "auth": auths,
    "tls": st.one_of(st.just({"verify": False}), st.just({"ca_bundle": "ca.pem"})),
    "key_id": st.sampled_from(["current", "alias/x", "alias/{cluster}-{svm}"]),
    "per_cluster": st.integers(1, 8),
    "priority": st.integers(-5, 5),
    "include_cluster_scope": st.booleans(),
}
some_settings = st.fixed_dictionaries({}, optional=settings_fields)
tags = st.lists(st.sampled_from(["prod", "dr", "eu", "lab"]), max_size=3)
svm_entries = st.lists(
    st.sampled_from(["vs1", "vs2", "vs3", "vs4"]), unique=True, max_size=4
).flatmap(
    lambda names: st.tuples(
        *(
            st.one_of(
                st.just(name),
                st.fixed_dictionaries(
                    {"name": st.just(name)},
                    optional={"key_id": settings_fields["key_id"], "priority": st.integers(0, 9)},
                ),
            )
            for name in names
        )
    ).map(list)
)


def _prefixes(items: list[str]) -> st.SearchStrategy[list[str]]:
    return st.integers(0, len(items)).map(lambda n: items[:n])


@st.composite
def inventories(draw: st.DrawFn) -> dict[str, Any]:
    """Valid raw inventories: defaults always hold auth, so every cluster has one."""
    groups = {
        name: {**draw(some_settings), "tags": draw(tags)}
        for name in draw(st.lists(st.sampled_from(GROUP_NAMES), unique=True))
    }
    clusters = [
        {
            **draw(some_settings),
            "name": f"c{index}",
            "host": f"c{index}.example.com",
            "groups": draw(st.permutations(list(groups)).flatmap(_prefixes)),
            "tags": draw(tags),
            "svms": draw(st.one_of(st.just("all"), svm_entries)),
        }
        for index in range(draw(st.integers(1, 5)))
    ]
    defaults = {**draw(some_settings), "auth": draw(auths)}
    return {"version": 1, "defaults": defaults, "groups": groups, "clusters": clusters}


def _resolved(data: dict[str, Any]) -> dict[str, ClusterSpec]:
    assert reference_issues(data, {}) == []
    inventory = resolve(InventoryModel.model_validate(data), path=PATH, sha256="0" * 64)
    return {spec.name: spec for spec in inventory.clusters}


@settings(max_examples=60, deadline=None)
@given(data=inventories(), seed=st.randoms(use_true_random=False))
def test_resolution_does_not_depend_on_the_order_of_clusters_or_groups(
    data: dict[str, Any], seed: Any
) -> None:
    """Shuffling the clusters list and the groups mapping changes no resolved value."""
    clusters = list(data["clusters"])
    seed.shuffle(clusters)
    groups = list(data["groups"].items())
    seed.shuffle(groups)
    shuffled = {**data, "clusters": clusters, "groups": dict(groups)}
    assert _resolved(shuffled) == _resolved(data)


@settings(max_examples=60, deadline=None)
@given(data=inventories())
def test_a_cluster_resolves_the_same_alone(data: dict[str, Any]) -> None:
    """A cluster's values depend on its own entry, its groups and defaults: not on others."""
    everything = _resolved(data)
    for cluster in data["clusters"]:
        alone = _resolved({**data, "clusters": [cluster]})
        assert alone == {cluster["name"]: everything[cluster["name"]]}


@settings(max_examples=60, deadline=None)
@given(data=inventories())
def test_every_resolved_cluster_has_exactly_one_auth_method(data: dict[str, Any]) -> None:
    """One of basic / cert / token, and basic auth has exactly one password source."""
    for spec in _resolved(data).values():
        assert sum(isinstance(spec.auth, kind) for kind in (BasicAuth, CertAuth, TokenAuth)) == 1
        if isinstance(spec.auth, BasicAuth):
            assert (spec.auth.password_env is None) != (spec.auth.password_file is None)


@settings(max_examples=60, deadline=None)
@given(data=inventories())
def test_auth_comes_whole_from_the_first_level_that_sets_it(data: dict[str, Any]) -> None:
    """Cluster, then its groups in its order, then defaults; never merged across levels."""
    resolved = _resolved(data)
    for cluster in data["clusters"]:
        levels = [cluster, *(data["groups"][g] for g in cluster["groups"]), data["defaults"]]
        expected = next(level["auth"] for level in levels if "auth" in level)
        auth = vars(resolved[cluster["name"]].auth)
        auth.pop("command_timeout_s", None)  # always set: the default when none is written
        assert {key for key, value in auth.items() if value is not None} == expected.keys()
        for key, value in expected.items():  # names as written; paths made absolute
            assert auth[key] == (
                PATH.parent / value if key.endswith(("_file", "_cert", "_key")) else value
            )
