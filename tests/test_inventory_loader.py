"""The loader: resolution order, paths, URLs, warnings, and what it never reads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from orchestrator.config import load, load_inventory
from orchestrator.core.errors import ErrorClass
from orchestrator.core.inventory import (
    BasicAuth,
    CertAuth,
    RetryOverride,
    RunDefaults,
    SvmEntry,
    TlsSettings,
    TokenAuth,
)
from orchestrator.errors import InventoryError

EXAMPLE = Path(__file__).resolve().parent.parent / "inventories" / "example.yaml"
ENVIRON = {"ONTAP_PASSWORD": "example", "ONTAP_TOKEN": "example"}

HEAD = """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
"""


def _write(tmp_path: Path, text: str, name: str = "inventory.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _one_cluster(tmp_path: Path, host: str) -> str:
    path = _write(tmp_path, HEAD + f"  - {{name: c1, host: '{host}', svms: all}}\n")
    return load_inventory(path, environ=ENVIRON).clusters[0].base_url


# -- the shipped example, resolved -----------------------------------------------------


def test_example_cluster_inherits_from_its_group_then_defaults() -> None:
    """east-02: per_cluster and priority from `prod`, auth and key_id from `defaults`."""
    spec = load_inventory(EXAMPLE, environ=ENVIRON).cluster("east-02")
    assert spec.per_cluster == 4
    assert spec.priority == 10
    assert spec.auth == BasicAuth(username="svc_rekey", password_env="ONTAP_PASSWORD")
    assert spec.key_id == "current"
    assert spec.tags == ("us-east-1", "prod")
    assert spec.base_url == "https://east-02.mgmt.example.com:8443"


def test_example_svm_entry_wins_over_cluster() -> None:
    """An SVM's own key_id and priority win; a plain name inherits the cluster's."""
    svms = load_inventory(EXAMPLE, environ=ENVIRON).cluster("east-02").svms
    assert svms[0] == SvmEntry("svm_finance", key_id="current", priority=10)
    assert svms[1].key_id.startswith("arn:aws:kms:us-east-1:111122223333:key/")
    assert svms[1].priority == 20


def test_example_groups_apply_in_the_clusters_order() -> None:
    """dr-01 lists [dr, prod]: auth, tls and key_id from dr; per_cluster from prod."""
    spec = load_inventory(EXAMPLE, environ=ENVIRON).cluster("dr-01")
    certs = EXAMPLE.parent / "certs"
    assert spec.auth == CertAuth(client_cert=certs / "dr.pem", client_key=certs / "dr.key")
    assert spec.tls == TlsSettings(verify=True, ca_bundle=certs / "corp-ca.pem")
    assert spec.key_id == "alias/ontap-{cluster}-{svm}"
    assert spec.per_cluster == 4
    assert spec.tags == ("us-east-2", "dr", "prod")
    assert spec.all_svms
    assert spec.include_cluster_scope
    assert spec.svms == ()


def test_example_every_auth_style() -> None:
    inventory = load_inventory(EXAMPLE, environ=ENVIRON)
    lab = inventory.cluster("lab-01")
    assert lab.auth == BasicAuth(
        username="admin", password_file=EXAMPLE.parent / "secrets" / "lab-01.password"
    )
    assert lab.tls == TlsSettings(verify=False)
    assert inventory.cluster("cvo-01").auth == TokenAuth(token_env="ONTAP_TOKEN")
    assert inventory.cluster("fra-01").key_id == "alias/ontap-kek-eu"


def test_example_run_defaults_and_retry() -> None:
    inventory = load_inventory(EXAMPLE, environ=ENVIRON)
    assert inventory.defaults == RunDefaults(
        concurrency=32, per_cluster=2, waves="1,10%,100%", max_fail_percent=10, return_timeout=30
    )
    assert inventory.retry == {
        "65537610": RetryOverride(max_attempts=2),
        "65539436": RetryOverride(ErrorClass.RETRYABLE, 20, 30.0, 300.0),
    }


def test_sha256_is_of_the_file_bytes_and_path_is_absolute() -> None:
    inventory = load_inventory(EXAMPLE, environ=ENVIRON)
    assert inventory.sha256 == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert inventory.path.is_absolute()
    assert inventory.version == 1


# -- hosts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "base_url"),
    [
        ("c1.example.com", "https://c1.example.com"),
        ("C1.Example.COM:8443", "https://c1.example.com:8443"),
        ("10.0.0.5", "https://10.0.0.5"),
        ("https://c1.example.com:443/", "https://c1.example.com:443"),
        ("[fd00::5]:8443", "https://[fd00::5]:8443"),
        ("http://127.0.0.1:18441", "http://127.0.0.1:18441"),
        ("http://127.9.9.9:80", "http://127.9.9.9:80"),
        ("http://localhost:18441", "http://localhost:18441"),
        ("http://[::1]:18441", "http://[::1]:18441"),
    ],
)
def test_host_forms_give_a_base_url(tmp_path: Path, host: str, base_url: str) -> None:
    """Always https, explicit ports kept; http only on loopback."""
    assert _one_cluster(tmp_path, host) == base_url


@pytest.mark.parametrize(
    "host", ["http://10.0.0.5", "http://c1.example.com", "ftp://c1", "https://u:p@c1"]
)
def test_unsafe_hosts_are_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(InventoryError, match=r"clusters\[0\]\.host: "):
        _one_cluster(tmp_path, host)


# -- all errors at once ----------------------------------------------------------------


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    """Schema, reference, environment and file problems come together, sorted by line."""
    path = _write(
        tmp_path,
        """\
version: 1
defaults:
  auth: {username: admin, password_env: UNSET_ONE}
clusters:
  - {name: a, host: a.example.com, svms: all, per_cluster: 0}
  - {name: a, host: b.example.com, svms: all, auth: {token_env: UNSET_TWO}}
  - {name: c, host: c.example.com, svms: all, auth: {client_cert: x.pem, client_key: x.key}}
""",
    )
    with pytest.raises(InventoryError) as caught:
        load(path, environ={})
    located = [line.removeprefix(f"{path}:").split(": ")[0:2] for line in caught.value.lines]
    assert located == [
        ["3:41", "defaults.auth.password_env"],
        ["5:60", "clusters[0].per_cluster"],
        ["6:12", "clusters[1].name"],
        ["6:65", "clusters[1].auth.token_env"],
        ["7:67", "clusters[2].auth.client_cert"],
        ["7:86", "clusters[2].auth.client_key"],
    ]


def test_empty_environment_variable_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + "  - {name: c1, host: c1, svms: all}\n")
    with pytest.raises(InventoryError, match="ONTAP_PASSWORD is empty"):
        load(path, environ={"ONTAP_PASSWORD": ""})


def test_check_env_false_turns_unset_variables_into_warnings(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + "  - {name: c1, host: c1, svms: all}\n")
    result = load(path, environ={}, check_env=False)
    assert result.warnings == (
        f"{path}:3:41: warning: defaults.auth.password_env: environment variable "
        "ONTAP_PASSWORD is not set (export ONTAP_PASSWORD before running)",
    )


def test_check_files_false_skips_the_file_system(tmp_path: Path) -> None:
    text = HEAD + "  - {name: c1, host: c1, svms: all, auth: {client_cert: a, client_key: b}}\n"
    path = _write(tmp_path, text)
    with pytest.raises(InventoryError):
        load(path, environ=ENVIRON)
    assert load(path, environ=ENVIRON, check_files=False).inventory.clusters[0].name == "c1"


# -- warnings --------------------------------------------------------------------------


def test_password_file_readable_by_others_is_a_warning_not_an_error(tmp_path: Path) -> None:
    """Like ssh: mode 0644 on a password file is reported, the load still succeeds."""
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    secret.chmod(0o644)
    text = HEAD + "  - {name: c1, host: c1, svms: all, auth: {username: u, password_file: pw}}\n"
    result = load(_write(tmp_path, text), environ=ENVIRON)
    assert len(result.warnings) == 1
    assert (
        "clusters[0].auth.password_file: mode 0644 lets group or others read it"
        in (result.warnings[0])
    )
    secret.chmod(0o600)
    assert load(tmp_path / "inventory.yaml", environ=ENVIRON).warnings == ()


def test_unused_group_is_a_warning(tmp_path: Path) -> None:
    text = HEAD.replace("clusters:\n", "groups:\n  spare: {}\nclusters:\n")
    result = load(_write(tmp_path, text + "  - {name: c1, host: c1, svms: all}\n"), environ=ENVIRON)
    assert result.groups == ("spare",)
    assert [w.split(": ", 2)[1:] for w in result.warnings] == [
        ["warning", "groups.spare: group is not used by any cluster (remove it or use it)"]
    ]


# -- secrets ---------------------------------------------------------------------------


def test_no_secret_value_is_read_into_the_inventory(tmp_path: Path) -> None:
    """Only names and paths: neither the env value nor the file content appears anywhere."""
    (tmp_path / "pw").write_text("file-secret-42\n")
    (tmp_path / "pw").chmod(0o600)
    text = HEAD + (
        "  - {name: c1, host: c1, svms: all}\n"
        "  - {name: c2, host: c2, svms: all, auth: {username: u, password_file: pw}}\n"
    )
    result = load(_write(tmp_path, text), environ={"ONTAP_PASSWORD": "env-secret-42"})
    assert "secret-42" not in repr(result)


# -- YAML features and edge cases ------------------------------------------------------


def test_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
x-common: &common {svms: all, per_cluster: 3}
clusters:
  - {<<: *common, name: c1, host: c1}
  - {<<: *common, name: c2, host: c2, per_cluster: 1}
"""
    with pytest.raises(InventoryError, match="unknown key 'x-common'"):
        load(_write(tmp_path, text), environ=ENVIRON)
    text = text.replace("x-common: &common {svms: all, per_cluster: 3}\n", "")
    anchored = "  - {<<: &common {svms: all, per_cluster: 3}, name: c1"
    text = text.replace("  - {<<: *common, name: c1", anchored)
    inventory = load_inventory(_write(tmp_path, text), environ=ENVIRON)
    assert [spec.per_cluster for spec in inventory.clusters] == [3, 1]


def test_utf8_bom_is_accepted_and_other_encodings_refused(tmp_path: Path) -> None:
    text = HEAD + "  - {name: c1, host: c1, svms: all}\n"
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert load_inventory(path, environ=ENVIRON).clusters[0].name == "c1"
    path.write_bytes(text.encode() + b"# caf\xe9\n")
    with pytest.raises(InventoryError, match=r":6:1: the file is not UTF-8 text"):
        load(path, environ=ENVIRON)


def test_missing_inventory_file_is_an_inventory_error(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="cannot read the inventory"):
        load(tmp_path / "nope.yaml")


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    """A few lines of aliases must not expand into millions of nodes."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 7)]
    with pytest.raises(InventoryError, match="too many aliases"):
        load(_write(tmp_path, "\n".join(lines) + "\n"))


def test_cluster_without_groups_or_settings_gets_builtin_defaults(tmp_path: Path) -> None:
    spec = load_inventory(
        _write(tmp_path, HEAD + "  - {name: c1, host: c1, svms: [vs1]}\n"), environ=ENVIRON
    ).clusters[0]
    assert (spec.key_id, spec.per_cluster, spec.priority) == ("current", None, 0)
    assert spec.tls == TlsSettings()
    assert spec.include_cluster_scope is False
    assert spec.svms == (SvmEntry("vs1", "current", 0),)
