"""`ontap-rekey history`: last rotations across runs, never-rotated targets, exit 0/5/2."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.core.targets import Outcome, TargetKey
from orchestrator.ledger.history import build_history
from orchestrator.ledger.metrics import prometheus_text
from orchestrator.ledger.records import RunMode
from orchestrator.ledger.store import Ledger, Rotation
from tests.ledger_factories import DAY, record_run

INVENTORY = """\
version: 1
defaults:
  auth: {username: admin, password_env: HISTORY_TEST_UNSET_PASSWORD}
groups:
  prod: {tags: [prod]}
clusters:
  - {name: east, host: east.example.com, groups: [prod], svms: all, include_cluster_scope: true}
  - {name: west, host: west.example.com, svms: [svm_a, svm_b]}
"""


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Two runs and a plan: east/svm1 rotated 1 day ago, east/svm2 100 days ago."""
    path = tmp_path / "ontap-rekey.db"
    now = time.time()
    with Ledger.open(path) as ledger:
        record_run(
            ledger,
            "20260801-100000-aaaa",
            {
                "east/svm1": (Outcome.REKEYED, now - 101 * DAY),
                "east/svm2": (Outcome.REKEYED, now - 100 * DAY),
                "west/svm_a": (Outcome.REKEYED, now - 100 * DAY),
            },
        )
        record_run(
            ledger,
            "20261126-100000-bbbb",
            {"east/svm1": (Outcome.REKEYED, now - DAY), "east/svm3": (Outcome.FAILED, now - DAY)},
        )
        plan = {"east/svm4": (Outcome.REKEYED, now)}  # a plan never counts as a rotation
        record_run(ledger, "20261127-100000-cccc", plan, mode=RunMode.PLAN)
    return path


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(INVENTORY)
    return path


def _history(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["history", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = _history(capsys, *args, "--json")
    return code, json.loads(out)


def _statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {entry["target"]: entry["status"] for entry in doc["targets"]}


def test_lists_the_last_rotation_of_each_target(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _history(capsys, "--state", str(db))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["TARGET", "PROVIDER", "LAST"]  # issue 15: the provider
    svm1 = next(line for line in lines if line.startswith("east/svm1 "))
    assert "20261126-100000-bbbb" in svm1
    assert "key-20261126-100000-bbbb" in svm1
    assert lines[-1] == "3 targets: 3 rotated, 0 never rotated"


def test_json_gives_run_time_and_key_id(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _json(capsys, "--state", str(db))
    assert code == 0
    assert doc["schema"] == "ontap-rekey/history/v1"
    svm2 = next(entry for entry in doc["targets"] if entry["target"] == "east/svm2")
    assert svm2["run_id"] == "20260801-100000-aaaa"
    assert svm2["key_id"] == "key-20260801-100000-aaaa"
    assert svm2["rotated_at"].endswith("Z")
    assert svm2["age_s"] == pytest.approx(100 * DAY, abs=60)
    assert doc["totals"] == {"targets": 3, "ok": 3, "overdue": 0, "never_rotated": 0}


def test_older_than_exits_5_when_a_target_is_overdue(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, doc = _json(capsys, "--state", str(db), "--older-than", "90d")
    assert code == 5
    assert _statuses(doc) == {"east/svm1": "ok", "east/svm2": "overdue", "west/svm_a": "overdue"}
    code, out, _ = _history(capsys, "--state", str(db), "--older-than", "90d")
    assert (
        out.splitlines()[-1] == "3 targets: 1 rotated within 90d, 2 older than 90d, 0 never rotated"
    )


def test_older_than_exits_0_when_everything_is_recent(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = _history(capsys, "--state", str(db), "--older-than", "120d")
    assert code == 0


def test_selectors_narrow_the_list(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, doc = _json(capsys, "--state", str(db), "--cluster", "east", "--svm", "svm[12]")
    assert set(_statuses(doc)) == {"east/svm1", "east/svm2"}
    code, doc = _json(capsys, "--state", str(db), "--svm", "svm1", "--older-than", "90d")
    assert (code, _statuses(doc)) == (0, {"east/svm1": "ok"})


def test_targets_file_selects_targets(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    selected = tmp_path / "failed.txt"
    selected.write_text("# from the last run\nwest/svm_a\n")
    _, doc = _json(capsys, "--state", str(db), "--targets", f"@{selected}")
    assert set(_statuses(doc)) == {"west/svm_a"}


def test_with_an_inventory_never_rotated_targets_are_listed(
    db: Path, inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """svms: all takes every target seen in the ledger; explicit SVMs come from the file."""
    code, doc = _json(capsys, str(inventory), "--state", str(db), "--older-than", "90d")
    assert code == 5
    assert _statuses(doc) == {
        "east/-": "never_rotated",  # include_cluster_scope
        "east/svm1": "ok",
        "east/svm2": "overdue",
        "east/svm3": "never_rotated",  # failed in its only run
        "east/svm4": "never_rotated",  # seen by a plan only
        "west/svm_a": "overdue",
        "west/svm_b": "never_rotated",
    }
    never = next(entry for entry in doc["targets"] if entry["target"] == "west/svm_b")
    assert never["rotated_at"] is None
    assert never["run_id"] is None


def test_never_rotated_alone_exits_5(
    db: Path, inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = _history(capsys, str(inventory), "--state", str(db), "--older-than", "365d")
    assert code == 5
    code, out, _ = _history(capsys, str(inventory), "--state", str(db))
    assert code == 0  # without a threshold, history only reports
    assert "west/svm_b" in out


def test_tags_select_through_the_inventory(
    db: Path, inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, doc = _json(capsys, str(inventory), "--state", str(db), "--tag", "prod")
    assert {target.split("/")[0] for target in _statuses(doc)} == {"east"}


def test_tag_without_inventory_is_a_usage_error(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _history(capsys, "--state", str(db), "--tag", "prod")
    assert code == 2
    assert "--tag needs an INVENTORY" in err


def test_a_missing_ledger_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _history(capsys, "--state", str(tmp_path / "none.db"))
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert "no ledger at" in err


def test_a_bad_duration_is_a_usage_error(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _history(capsys, "--state", str(db), "--older-than", "ninety days")
    assert code == 2
    assert "invalid duration" in err


def test_an_empty_ledger_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.db"
    Ledger.open(path).close()
    code, out, _ = _history(capsys, "--state", str(path), "--older-than", "90d")
    assert (code, out.strip()) == (0, "no matching target in the ledger")


def test_json_and_another_format_contradict(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _history(capsys, "--state", str(db), "--json", "--format", "prometheus")
    assert (code, out) == (2, "")
    assert "--json and --format prometheus contradict" in err


def test_selectors_matching_nothing_in_the_ledger_are_exit_2(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without an inventory the ledger is the reference: a typo is not an empty green list."""
    code, out, err = _history(capsys, "--state", str(db), "--cluster", "esat", "--older-than", "9d")
    assert (code, out) == (2, "")
    assert err == "error: the selection matches no target in the ledger: --cluster esat\n"


def test_prometheus_label_values_are_escaped() -> None:
    history = build_history(
        {TargetKey('we"st\\1', "svm\n2"): Rotation("r1", 1_700_000_000.5, "k")},
        now=1_700_000_100.0,
        older_than_s=None,
    )
    text = prometheus_text(history)
    sample = (
        'ontap_rekey_last_rotation_timestamp_seconds{cluster="we\\"st\\\\1",svm="svm\\n2",'
        'operation="external"} 1700000000.5'
    )
    assert sample in text.splitlines()
    assert 'ontap_rekey_overdue_targets{operation="external"} 0' in text.splitlines()


def test_exclusions_narrow_the_list_without_an_inventory(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    skip = tmp_path / "skip.txt"
    skip.write_text("!east/svm2\n")
    _, doc = _json(capsys, "--state", str(db), "--targets", f"@{skip}", "--exclude-cluster", "w*")
    assert set(_statuses(doc)) == {"east/svm1"}
    _, doc = _json(capsys, "--state", str(db), "--exclude-svm", "svm1")
    assert set(_statuses(doc)) == {"east/svm2", "west/svm_a"}
