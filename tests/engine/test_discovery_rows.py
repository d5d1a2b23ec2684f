"""The rows discovery builds (issue 16: each a copy of one template per cluster, not a
new `TargetRow(...)` per target) are exactly the rows `TargetRow`'s own constructor
builds, field for field, and no two rows share a `facts` or `evidence` dict; the plan's
per-cluster lookups find what the searches they replaced found."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.errors import ErrorKind, OntapError
from orchestrator.core.inventory import (
    BasicAuth,
    ClusterSpec,
    GcpKeyTemplates,
    SvmEntry,
    TlsSettings,
)
from orchestrator.core.policy import classify
from orchestrator.core.providers import Operation, Provider
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.engine import planner
from orchestrator.engine.discovery import GCP_KEY_FACT, Discovery, target_rows
from orchestrator.ledger.records import TargetRow
from orchestrator.ontap.models import (
    ClusterInfo,
    GcpKeyRing,
    KeyManagerConfig,
    KeyStore,
    key_store_for_config,
)
from tests.ontap_factories import key_manager_config

INFO = ClusterInfo("c1", "CU-1", (9, 14, 1), "9.14.1")


SPEC = ClusterSpec(
    name="c1",
    base_url="http://127.0.0.1:1",
    auth=BasicAuth("admin", password_env="X"),
    tls=TlsSettings(),
    key_id="current",
    svms=(
        SvmEntry("a", "alias/new", priority=3),
        SvmEntry("g", "current", gcp_key=GcpKeyTemplates(project_id="proj")),
        SvmEntry("n", "current"),
    ),
)
FOUND = Discovery(
    "c1",
    info=INFO,
    configs=(
        key_manager_config(Provider.AWS, "a", "alias/old", "u-a"),
        key_manager_config(Provider.GCP, "g", "gkey", "u-g", GcpKeyRing("p", "l", "r")),
    ),
)


def _pending(svm: str, priority: int, **fields: object) -> TargetRow:
    return TargetRow(
        run_id="r1",
        key=TargetKey("c1", svm),
        priority=priority,
        cluster_uuid="cu-1",
        **fields,  # type: ignore[arg-type]
    )


def test_every_row_is_the_row_its_constructor_builds() -> None:
    rows = target_rows("r1", SPEC, FOUND, Selection(), Operation.EXTERNAL)
    aws, gcp, absent = rows
    assert aws == _pending(
        "a",
        3,
        operation="external",
        provider="aws",
        config_uuid="u-a",
        key_id_before="alias/old",
        key_id_intended="alias/new",
    )
    assert gcp == _pending(
        "g",
        0,
        operation="external",
        provider="gcp",
        config_uuid="u-g",
        key_id_before="gkey",
        key_id_intended="gkey",
        facts={GCP_KEY_FACT: gcp.facts[GCP_KEY_FACT]},
    )
    assert gcp.facts[GCP_KEY_FACT]["project_id"] == "proj"
    assert absent == _pending(
        "n",
        0,
        operation="external",
        state=TargetState.DONE,
        outcome="skipped",
        reason="not_configured",
        error_message="no cloud key manager configuration for this SVM on the cluster",
    )
    (internal, _, _) = target_rows("r1", SPEC, FOUND, Selection(), Operation.INTERNAL)
    assert internal == _pending(
        "a",
        3,
        operation="internal",
        provider="aws",
        config_uuid="u-a",
        key_id_before="alias/old",
        key_id_intended="alias/old",
    )


def test_a_cluster_that_did_not_answer_gives_the_constructors_skipped_rows() -> None:
    down = OntapError(cluster="c1", operation="cluster_info", kind=ErrorKind.CONNECT, message="x")
    failed = Discovery("c1", error=down, rule=classify(down))
    rows = target_rows("r1", SPEC, failed, Selection())
    assert [row.key.svm for row in rows] == ["a", "g", "n"]
    assert rows[0] == TargetRow(
        run_id="r1",
        key=TargetKey("c1", "a"),
        priority=3,
        operation="external",
        state=TargetState.DONE,
        outcome="skipped",
        reason="unreachable",
        error_code=down.code,
        error_message=down.summary(),
        error_class=classify(down).error_class.value,
        error_hint=classify(down).hint,
    )


def test_no_two_rows_share_their_facts_or_evidence() -> None:
    """A row's dicts are its own: the copies never alias the template's (or each
    other's), so a change to one row's facts can never show in another's."""
    rows = [
        *target_rows("r1", SPEC, FOUND, Selection(), Operation.EXTERNAL),
        *target_rows("r1", SPEC, FOUND, Selection(), Operation.INTERNAL),
    ]
    assert len({id(row.facts) for row in rows}) == len(rows)
    assert len({id(row.evidence) for row in rows}) == len(rows)
    rows[0].facts["x"] = 1
    assert all("x" not in row.facts for row in rows[1:])


_SVMS = st.sampled_from(["a", "b", "-", None])
_STORES = st.lists(
    st.builds(
        KeyStore,
        uuid=st.sampled_from(["k1", "k2", "k3"]),
        svm_name=_SVMS,
        scope=st.sampled_from(["svm", "cluster", None]),
        type=st.sampled_from(["aws", "akv", "gcp", "okm"]),
        enabled=st.sampled_from([True, False, None]),
        state=st.sampled_from(["active", "switching", None]),
    ),
    max_size=8,
)
_CONFIGS = st.lists(
    st.builds(
        lambda provider, svm, uuid, scope: replace(
            key_manager_config(provider, svm or "x", "key", uuid), scope=scope, svm_name=svm
        ),
        st.sampled_from([Provider.AWS, Provider.AZURE, Provider.GCP]),
        _SVMS,
        st.sampled_from(["u1", "u2", "u3"]),
        st.sampled_from(["svm", "cluster"]),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(_CONFIGS, _STORES, st.sampled_from(["u1", "u2", "u4", None]))
def test_readiness_lookups_find_what_the_linear_searches_find(
    configs: list[KeyManagerConfig], stores: list[KeyStore], uuid: str | None
) -> None:
    """The plan's per-cluster indexes (a configuration by uuid, a key store by SVM and
    type) return the first match of the walk through the lists they replaced."""
    found = Discovery("c1", info=INFO, configs=tuple(configs), key_stores=tuple(stores))
    config = planner._config(found, uuid)
    assert config is next((c for c in configs if c.uuid == uuid), None)
    for each in configs:
        assert planner._key_store(found, each) is key_store_for_config(each, stores)
