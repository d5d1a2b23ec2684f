"""`ontap-rekey validate`: the summary, selectors, --json, and no secret in any output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.cli import main

EXAMPLE = Path(__file__).resolve().parent.parent / "inventories" / "example.yaml"
ENV_SECRET = "env-Secret-Value-7f3a"
FILE_SECRET = "file-Secret-Value-9c1e"
INVENTORY = """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
groups:
  prod: {tags: [prod], per_cluster: 4}
  lab: {tags: [lab]}
clusters:
  - {name: east-01, host: east-01.example.com, groups: [prod], svms: all}
  - name: east-02
    host: east-02.example.com:8443
    groups: [prod]
    tags: [us-east-1]
    svms: [svm_fin, {name: svm_hr, key_id: alias/hr}]
    include_cluster_scope: true
  - name: lab-01
    host: lab-01.example.com
    groups: [lab]
    auth: {username: admin, password_file: lab.password}
    svms: [svm_test]
"""


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small fleet whose secrets (env and file) have known values."""
    monkeypatch.setenv("ONTAP_PASSWORD", ENV_SECRET)
    secret = tmp_path / "lab.password"
    secret.write_text(FILE_SECRET + "\n")
    secret.chmod(0o600)
    path = tmp_path / "fleet.yaml"
    path.write_text(INVENTORY)
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_summary_counts(inventory: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, str(inventory))
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("fleet.yaml: valid (version 1, sha256 ")
    assert lines[1:] == [
        "  clusters:        3 (1 with svms: all)",
        "  explicit SVMs:   3",
        "  cluster scopes:  1",
        "  groups:          2 (lab, prod)",
        "  tags:            3 (lab, prod, us-east-1)",
        "  selected:        4 targets, plus 1 cluster with svms: all, selected after discovery",
    ]


@pytest.mark.parametrize(
    ("selectors", "selected"),
    [
        (["--tag", "lab"], "1 target"),
        (
            ["--cluster", "east-*"],
            "3 targets, plus 1 cluster with svms: all, selected after discovery",
        ),
        (["--cluster", "east-02", "--svm", "svm_h*"], "1 target"),
        (["--svm", "-"], "1 target, plus 1 cluster with svms: all, selected after discovery"),
        (["--exclude-cluster", "east-0?"], "1 target"),
        (
            ["--exclude-svm", "svm_*"],
            "1 target, plus 1 cluster with svms: all, selected after discovery",
        ),
    ],
)
def test_selectors_narrow_the_selected_line(
    inventory: Path, capsys: pytest.CaptureFixture[str], selectors: list[str], selected: str
) -> None:
    code, out, _ = _run(capsys, str(inventory), *selectors)
    assert code == 0
    assert out.splitlines()[-1] == f"  selected:        {selected}"


def test_targets_file_selects(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = tmp_path / "failed.txt"
    failed.write_text("east-02/svm_hr\nlab-01/svm_test\n")
    code, out, _ = _run(capsys, str(inventory), "--targets", f"@{failed}", "--json")
    assert code == 0
    assert json.loads(out)["selected"] == {
        "targets": ["east-02/svm_hr", "lab-01/svm_test"],
        "clusters_to_discover": [],
    }


def test_bad_targets_file_is_a_usage_error(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = tmp_path / "failed.txt"
    failed.write_text("east-02 svm_hr\n")
    code, _, err = _run(capsys, str(inventory), "--targets", f"@{failed}")
    assert code == 2
    assert "line 1: expected 'cluster/svm'" in err


def test_json_is_the_resolved_inventory(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, str(inventory), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["version"] == 1
    assert data["groups"] == ["prod", "lab"]
    east = data["clusters"][1]
    assert east["base_url"] == "https://east-02.example.com:8443"
    assert east["per_cluster"] == 4
    assert east["svms"][1] == {
        "name": "svm_hr",
        "key_id": "alias/hr",
        "priority": 0,
        "providers": None,  # issue 15: every key manager
        "gcp_key": {
            "key_name": "current",
            "project_id": None,
            "key_ring_location": None,
            "key_ring_name": None,
        },
    }
    assert east["auth"] == {
        "method": "basic",
        "username": "admin",
        "password_env": "ONTAP_PASSWORD",
        "password_file": None,
        "password_command": None,
        "command_timeout_s": 30.0,
    }
    assert data["clusters"][2]["auth"]["password_file"] == str(inventory.parent / "lab.password")


@pytest.mark.parametrize("flags", [[], ["--json"], ["--tag", "lab", "--json"]])
def test_no_secret_value_in_any_output(
    inventory: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    """Names of variables and paths of files only: the secret values never appear."""
    _, out, err = _run(capsys, str(inventory), *flags)
    for secret in (ENV_SECRET, FILE_SECRET):
        assert secret not in out
        assert secret not in err
    assert "ONTAP_PASSWORD" in out or not flags


def test_warnings_go_to_stderr_and_exit_0(
    inventory: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (inventory.parent / "lab.password").chmod(0o644)
    code, out, err = _run(capsys, str(inventory))
    assert code == 0
    assert "valid" in out
    assert err.splitlines() == [
        f"{inventory}:18:44: warning: clusters[2].auth.password_file: mode 0644 lets group or "
        f"others read it (chmod 600 {inventory.parent / 'lab.password'})"
    ]


def test_unset_env_var_is_an_error_unless_no_env_check(
    inventory: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ONTAP_PASSWORD")
    expected = (
        f"{inventory}:3:41: defaults.auth.password_env: environment variable ONTAP_PASSWORD "
        "is not set (export ONTAP_PASSWORD before running)"
    )
    assert _run(capsys, str(inventory)) == (2, "", expected + "\n")
    code, out, err = _run(capsys, str(inventory), "--no-env-check")
    assert code == 0
    assert "valid" in out
    assert err == expected.replace(": defaults.", ": warning: defaults.") + "\n"


def test_missing_inventory_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, str(tmp_path / "nope.yaml"))
    assert code == 2
    assert err.startswith("error: ")
    assert "cannot read the inventory" in err


def test_the_example_validates_with_its_env_vars(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's first command."""
    monkeypatch.setenv("ONTAP_PASSWORD", "example")
    monkeypatch.setenv("ONTAP_TOKEN", "example")
    code, out, _ = _run(capsys, str(EXAMPLE))
    assert code == 0
    assert "clusters:        9 (3 with svms: all)" in out


def test_help_works(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--help"]) == 0
    assert "--no-env-check" in capsys.readouterr().out


# -- no false green: a selector that matches nothing is exit 2, one line naming it ------


@pytest.mark.parametrize(
    ("selectors", "message"),
    [
        (["--cluster", "c01*"], "error: --cluster 'c01*' matches no cluster of the inventory"),
        (["--tag", "nope"], "error: --tag 'nope' matches no cluster of the inventory"),
        (
            ["--cluster", "lab-01", "--svm", "smv_test"],
            "error: --svm 'smv_test' matches no SVM of the selected clusters",
        ),
        (
            ["--exclude-cluster", "esat-*"],
            "error: --exclude-cluster 'esat-*' matches no cluster of the inventory",
        ),
        (
            ["--cluster", "east-02", "--tag", "lab"],
            "error: the selection matches no target of the inventory: --cluster east-02 --tag lab",
        ),
    ],
)
def test_a_selector_that_matches_nothing_is_exit_2(
    inventory: Path,
    capsys: pytest.CaptureFixture[str],
    selectors: list[str],
    message: str,
) -> None:
    code, out, err = _run(capsys, str(inventory), *selectors)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith(message)


def test_targets_lines_naming_unknown_clusters_or_targets_are_exit_2(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "failed.txt"
    targets.write_text("east-02/svm_fin\nnorth-09/svm1\n!lab-01/svm_nope\n")
    code, _, err = _run(capsys, str(inventory), "--targets", f"@{targets}")
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        f"error: --targets @{targets}: north-09/svm1 names cluster 'north-09', which the "
        "inventory lacks"
    )
    assert lines[1].startswith(f"error: --targets @{targets}: !lab-01/svm_nope is not a target")


def test_an_empty_targets_file_is_exit_2(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A failed.txt of a run where nothing failed selects nothing: never a green no-op."""
    targets = tmp_path / "failed.txt"
    targets.write_text("# ontap-rekey run 20261201-000000-abcd: 0 targets not rekeyed\n")
    code, _, err = _run(capsys, str(inventory), "--targets", f"@{targets}")
    assert code == 2
    assert err == f"error: the selection matches no target of the inventory: --targets @{targets}\n"


def test_exclusions_and_bang_lines_leave_targets_out(
    inventory: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "skip.txt"
    targets.write_text("!east-02/svm_hr\n!east-01/*\n")
    code, out, _ = _run(
        capsys, str(inventory), "--targets", f"@{targets}", "--exclude-svm", "-", "--json"
    )
    assert code == 0
    selected = json.loads(out)["selected"]
    assert selected == {
        "targets": ["east-02/svm_fin", "lab-01/svm_test"],
        "clusters_to_discover": [],
    }


def test_a_list_where_a_group_name_belongs_is_one_line_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`groups: [[]]` (found by the fuzzer): the schema's one line, exit 2, no traceback."""
    monkeypatch.setenv("X_PASSWORD", "secret")
    path = tmp_path / "inv.yaml"
    path.write_text(
        "version: 1\n"
        "defaults: {auth: {username: a, password_env: X_PASSWORD}}\n"
        "groups: {g: {}}\n"
        "clusters:\n"
        "  - {name: c1, host: 127.0.0.1, groups: [[]], svms: [s]}\n",
        encoding="utf-8",
    )
    code, _, err = _run(capsys, str(path))
    assert code == 2
    assert "Traceback" not in err
    assert f"{path}:5:42: clusters[0].groups[0]: expected a string" in err
