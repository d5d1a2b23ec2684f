"""Issue 15 in the engine's pure parts and the ledger: migration 4 (provider and operation
per row, calibrations per endpoint), the read-back's judgement per operation, and the
rows discovery writes per provider."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from orchestrator.core.errors import ErrorKind, OntapError
from orchestrator.core.inventory import BasicAuth, ClusterSpec, SvmEntry, TlsSettings
from orchestrator.core.lifecycle import Event, Reason
from orchestrator.core.providers import Operation, Provider
from orchestrator.core.selectors import Selection
from orchestrator.core.settling import Calibration
from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.engine.discovery import (
    Discovery,
    row_intended_key,
    target_rows,
    wanted_targets,
)
from orchestrator.engine.verify import judge
from orchestrator.ledger.records import TargetRow
from orchestrator.ledger.schema import MIGRATIONS
from orchestrator.ledger.store import Ledger
from orchestrator.ontap.models import ClusterInfo, KeyManagerConfig, KeyStore
from tests.ontap_factories import key_manager_config

AZURE_URL = "https://vault1.vault.azure.net/keys/kek"


def _spec(*svms: SvmEntry, all_svms: bool = False) -> ClusterSpec:
    return ClusterSpec(
        name="c1",
        base_url="http://127.0.0.1:1",
        auth=BasicAuth("admin", password_env="X"),
        tls=TlsSettings(),
        key_id="current",
        all_svms=all_svms,
        svms=svms,
    )


def _discovery(version: tuple[int, int, int], *configs: KeyManagerConfig) -> Discovery:
    info = ClusterInfo("c1", "cu1", version, ".".join(map(str, version)))
    return Discovery("c1", info=info, configs=configs)


# -- the ledger ------------------------------------------------------------------------------


def test_a_v3_ledger_migrates_to_aws_external_rows_and_calibrations(tmp_path: Path) -> None:
    """Rows and calibrations written before issue 15 were all AWS rekey-external."""
    path = tmp_path / "ledger.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE schema_version ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for migration in MIGRATIONS[:3]:
        for statement in migration.statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, 'v', 0)", (migration.version,))
    conn.execute(
        "INSERT INTO runs VALUES ('r1', 'run', NULL, 'f.yaml', 'ab', '{}', '{}', 'me', 1, 2,"
        " 'finished')"
    )
    conn.execute(
        "INSERT INTO targets (run_id, cluster, svm, state, outcome, attempts, priority, facts,"
        " finished_at) VALUES ('r1', 'c1', 'svm1', 'done', 'rekeyed', 1, 0, '{}', 5)"
    )
    conn.execute(
        "INSERT INTO job_calibrations VALUES ('c1', 'POST x/{uuid}', 0, 'j1', 'u1', 1, 0, 300,"
        " 'r1', 1)"
    )
    conn.close()
    with Ledger.open(path) as ledger:
        (row,) = ledger.targets("r1")
        assert (row.provider, row.operation) == (None, None)
        assert (row.provider_kind, row.operation_kind) == (Provider.AWS, Operation.EXTERNAL)
        (calibration,) = ledger.calibrations()["c1"].values()
        assert calibration.kind == (Provider.AWS, Operation.EXTERNAL)
        assert (calibration.confirmed, calibration.record_lifetime_s) == (True, 300.0)
        assert set(ledger.last_rotations(operation=Operation.EXTERNAL)) == {TargetKey("c1", "svm1")}
        assert ledger.last_rotations(operation=Operation.INTERNAL) == {}


def test_calibrations_of_two_endpoints_of_one_cluster_are_kept_apart(tmp_path: Path) -> None:
    """An Azure job looks nothing like an AWS one: each endpoint has its own template, and
    one going unstable leaves the other trusted."""
    aws = Calibration("c1", "POST /api/security/aws-kms/{uuid}/rekey-external", False, "j1", "u1")
    azure = replace(
        aws,
        description="POST /api/security/azure-key-vaults/{uuid}/rekey-internal",
        provider=Provider.AZURE,
        operation=Operation.INTERNAL,
        unstable=True,
    )
    with Ledger.open(tmp_path / "l.db") as ledger:
        ledger.save_calibration(replace(aws, confirmed=True))
        ledger.save_calibration(azure)
        known = ledger.calibrations()["c1"]
    assert known[(Provider.AWS, Operation.EXTERNAL)].trusted
    assert known[(Provider.AZURE, Operation.INTERNAL)].unstable


# -- discovery's rows ------------------------------------------------------------------------


def test_rows_know_their_provider_operation_and_key_per_provider() -> None:
    """External: AWS/Azure send key_id, GCP key_name (the current one here); a literal of
    the wrong shape for its provider fails the target before anything is sent."""
    spec = _spec(
        SvmEntry("a", "current"),
        SvmEntry("z", "alias/not-an-azure-url"),
        SvmEntry("g", "current"),
    )
    found = _discovery(
        (9, 14, 1),
        key_manager_config(Provider.AWS, "a", "k-aws", "u1"),
        key_manager_config(Provider.AZURE, "z", AZURE_URL, "u2"),
        key_manager_config(Provider.GCP, "g", "gkey", "u3"),
    )
    rows = {r.key.svm: r for r in target_rows("r1", spec, found, Selection(), Operation.EXTERNAL)}
    assert {s: (r.provider, r.operation) for s, r in rows.items()} == {
        "a": ("aws", "external"),
        "z": ("azure", "external"),
        "g": ("gcp", "external"),
    }
    assert (rows["a"].state, rows["a"].key_id_intended) == (TargetState.PENDING, "k-aws")
    assert (rows["z"].outcome, rows["z"].reason) == ("failed", "invalid_key")
    assert "Azure Key Vault key URL" in (rows["z"].error_message or "")
    gcp = row_intended_key(rows["g"])
    assert gcp is not None and gcp.key == "gkey"


def test_internal_rows_expect_the_key_they_hold_and_send_no_body() -> None:
    spec = _spec(SvmEntry("a", "alias/new-key"))
    found = _discovery((9, 12, 1), key_manager_config(Provider.AWS, "a", "k-old"))
    (row,) = target_rows("r1", spec, found, Selection(), Operation.INTERNAL)
    assert (row.operation, row.key_id_before, row.key_id_intended) == ("internal", "k-old", "k-old")
    assert row_intended_key(row) is None


def test_version_gates_are_per_provider_and_operation() -> None:
    """On 9.10 an Azure configuration has rekey-internal but not rekey-external."""
    spec = _spec(all_svms=True)
    found = _discovery((9, 10, 1), key_manager_config(Provider.AZURE, "z", AZURE_URL))
    (external,) = target_rows("r1", spec, found, Selection(), Operation.EXTERNAL)
    (internal,) = target_rows("r1", spec, found, Selection(), Operation.INTERNAL)
    assert (external.outcome, external.reason) == ("skipped", "unsupported_version")
    assert "9.11" in (external.error_message or "")
    assert (internal.state, internal.provider) == (TargetState.PENDING, "azure")


def test_a_provider_the_inventory_leaves_out_is_not_configured() -> None:
    spec = _spec(SvmEntry("g", "current", providers=(Provider.AWS,)))
    found = _discovery((9, 14, 1), key_manager_config(Provider.GCP, "g", "gkey"))
    (row,) = target_rows("r1", spec, found, Selection())
    assert (row.outcome, row.reason, row.provider) == ("skipped", "not_configured", "gcp")


# -- the read-back's judgement ---------------------------------------------------------------


def _row(operation: Operation, before: str, intended: str) -> TargetRow:
    return TargetRow(
        "r1",
        TargetKey("c1", "a"),
        config_uuid="u1",
        key_id_before=before,
        key_id_intended=intended,
        provider="azure",
        operation=operation.value,
    )


def test_an_internal_rekey_verifies_an_unchanged_key_id_and_is_no_key_evidence() -> None:
    store = KeyStore("s1", "a", "svm", "akv", True, "active")
    row = _row(Operation.INTERNAL, AZURE_URL, AZURE_URL)
    result, changed = judge(key_manager_config(Provider.AZURE, "a", AZURE_URL), store, row)
    assert (result.event, changed) == (Event.VERIFIED, False)
    moved, _ = judge(key_manager_config(Provider.AZURE, "a", AZURE_URL + "2"), store, row)
    assert (moved.event, moved.reason) == (Event.VERIFY_MISMATCH, Reason.KEY_ID_MISMATCH)


def test_an_external_rekey_counts_the_new_key_id_as_evidence() -> None:
    row = _row(Operation.EXTERNAL, AZURE_URL, AZURE_URL + "2")
    result, changed = judge(key_manager_config(Provider.AZURE, "a", AZURE_URL + "2"), None, row)
    assert (result.event, changed) == (Event.VERIFIED, True)


def test_wanted_targets_are_the_inventory_targets_with_their_settings() -> None:
    """Discovery's targets follow `core.selectors.inventory_targets` (issue 14): entries
    first with their own key, then the SVMs found (one target per SVM however many
    collections list it) with the cluster's; a cluster that could not tell its SVMs
    stands as `*`."""
    spec = replace(
        _spec(SvmEntry("b", "kb", priority=5), all_svms=True), include_cluster_scope=True
    )
    found = _discovery(
        (9, 14, 1),
        key_manager_config(Provider.AWS, "c", "k1", "u1"),
        key_manager_config(Provider.AZURE, "c", AZURE_URL, "u2"),
        key_manager_config(Provider.AWS, "b", "k3", "u3"),
    )
    wanted = list(wanted_targets(spec, found))
    assert [(w.svm, w.key_id, w.priority) for w in wanted] == [
        ("b", "kb", 5),
        ("c", "current", spec.priority),
        ("-", "current", spec.priority),
    ]
    down = OntapError(cluster="c1", operation="x", kind=ErrorKind.CONNECT, message="down")
    failed = Discovery("c1", error=down)
    assert [w.svm for w in wanted_targets(spec, failed)] == ["b", "*", "-"]
