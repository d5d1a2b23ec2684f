# ruff: noqa: E501  (the expected lines are long by nature; kept whole so they can be grepped)
"""Broken inventories: each gives exactly the expected lines, with line and column.

Each case is a whole (small) inventory; the expected lines use `{path}` for the file and
`{dir}` for its folder. The same cases run through the command line: exit 2, the lines on
stderr, no traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.config import load
from orchestrator.errors import InventoryError

ENVIRON = {"ONTAP_PASSWORD": "example", "ONTAP_TOKEN": "example"}

CASES = [
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: [c1.example.com
    svms: all
""",
        [
            "{path}:7:9: invalid YAML: while parsing a flow sequence; expected ',' or ']', but got ':' (fix the syntax; check indentation and quotes)",
        ],
        id="yaml_syntax",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
\thost: x
""",
        [
            "{path}:6:1: invalid YAML: while scanning for the next token; found character '\\t' that cannot start any token (fix the syntax; check indentation and quotes)",
        ],
        id="yaml_tab",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
---
version: 1
""",
        [
            "{path}:8:1: invalid YAML: expected a single document in the stream; but found another document (fix the syntax; check indentation and quotes)",
        ],
        id="multiple_documents",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: !!python/object/apply:os.system [ls]
    host: x
    svms: all
""",
        [
            "{path}:5:11: invalid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system' (fix the syntax; check indentation and quotes)",
        ],
        id="unsafe_tag",
    ),
    pytest.param(
        """\
# nothing here yet
""",
        [
            "{path}:1:1: the inventory is empty (start with version: 1 and a clusters: list; see docs/inventory.md)",
        ],
        id="empty",
    ),
    pytest.param(
        """\
- version: 1
""",
        [
            "{path}:1:1: the inventory is not a mapping (start with version: 1 and a clusters: list; see docs/inventory.md)",
        ],
        id="not_a_mapping",
    ),
    pytest.param(
        """\
version: 2
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
""",
        [
            "{path}:1:10: version: unsupported version 2 (this ontap-rekey reads version: 1)",
        ],
        id="unsupported_version",
    ),
    pytest.param(
        """\
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
""",
        [
            "{path}:1:1: version: missing required key 'version' (add version: 1 at the top)",
        ],
        id="missing_version",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  []
""",
        [
            "{path}:4:1: clusters: the list is empty (add at least one cluster)",
        ],
        id="no_clusters",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
    tag: [prod]
""",
        [
            "{path}:8:5: clusters[0].tag: unknown key 'tag' (did you mean 'tags'?)",
        ],
        id="unknown_key_did_you_mean",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
retries: {}
""",
        [
            "{path}:8:1: retries: unknown key 'retries' (did you mean 'retry'?)",
        ],
        id="unknown_top_level_key",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, pasword_env: X}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
""",
        [
            "{path}:3:27: defaults.auth.pasword_env: unknown key 'pasword_env' (did you mean 'password_env'?)",
        ],
        id="unknown_auth_key",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
    per_cluster: "4"
""",
        [
            "{path}:8:18: clusters[0].per_cluster: expected an integer, got '4' (write a whole number, without quotes)",
        ],
        id="wrong_type_quoted_int",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
    include_cluster_scope: maybe
""",
        [
            "{path}:8:28: clusters[0].include_cluster_scope: expected true or false, got 'maybe' (write true or false, without quotes)",
        ],
        id="wrong_type_bool",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: 5
""",
        [
            "{path}:7:11: clusters[0].svms: expected all or a list of SVM names (write svms: all or a list)",
        ],
        id="wrong_type_svms",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: everything
""",
        [
            "{path}:7:11: clusters[0].svms: expected all or a list of SVM names, got 'everything' (write svms: all)",
        ],
        id="svms_not_all",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    svms: all
""",
        [
            "{path}:5:5: clusters[0].host: missing required key 'host' (add host: NAME, NAME:PORT or https://NAME:PORT)",
        ],
        id="missing_host",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
  - name: c1
    host: c1.example.com
    svms: all
""",
        [
            "{path}:8:11: clusters[1].name: duplicate cluster name 'c1', first on line 5 (names must be unique: rename or merge)",
        ],
        id="duplicate_cluster",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms:
      - vs1
      - {name: vs1, priority: 2}
""",
        [
            "{path}:9:16: clusters[0].svms[1].name: duplicate SVM 'vs1' in cluster, first on line 8 (list each SVM once)",
        ],
        id="duplicate_svm",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    host: c2.example.com
    svms: all
""",
        [
            "{path}:7:5: clusters[0].host: duplicate key 'host', first on line 6 (YAML keeps only the last one; remove or merge one of them)",
        ],
        id="duplicate_yaml_key",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
groups:
  prod: {tags: [prod]}
clusters:
  - name: c1
    host: c1.example.com
    groups: [prod, prdo]
    svms: all
""",
        [
            "{path}:9:20: clusters[0].groups[1]: undefined group 'prdo' (did you mean 'prod'?)",
        ],
        id="undefined_group",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    auth: {username: admin, password: s3cret-value}
    svms: all
""",
        [
            "{path}:5:29: clusters[0].auth.password: a literal password is not accepted (use password_env: VARIABLE_NAME, password_file: PATH or password_command: [program, arg, ...] instead)",
        ],
        id="literal_password",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    auth:
      username: admin
      password_env: ONTAP_PASSWORD
      token_env: ONTAP_TOKEN
    svms: all
""",
        [
            "{path}:5:5: clusters[0].auth: auth mixes username/password and token (use one of: username + password_env | password_file | password_command; client_cert + client_key; token_env | token_command)",
        ],
        id="auth_mixes_methods",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    auth: {username: admin, password_env: ONTAP_PASSWORD, password_file: pw.txt}
    svms: all
""",
        [
            "{path}:5:5: clusters[0].auth: basic auth needs exactly one of password_env, password_file and password_command (keep one of them)",
            "{path}:5:74: clusters[0].auth.password_file: file not found: {dir}/pw.txt (relative paths start at the inventory's folder)",
        ],
        id="basic_auth_two_passwords",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    auth: {username: admin, password_command: "vault kv get secret"}
    svms: all
""",
        [
            '{path}:5:47: clusters[0].auth.password_command: expected a list [program, arg, ...], got a string (the command runs without a shell: write e.g. [vault, kv, get, "-field=password", secret/ontap])',
        ],
        id="password_command_as_a_shell_string",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    auth: {username: admin, password_command: []}
    svms: all
""",
        [
            "{path}:5:29: clusters[0].auth.password_command: expected a non-empty list [program, arg, ...] (the program first)",
        ],
        id="password_command_empty",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    auth:
      token_command: [/bin/echo, 12345]
    svms: all
""",
        [
            "{path}:6:34: clusters[0].auth.token_command[1]: expected a string, got 12345 (quote the value)",
        ],
        id="token_command_item_not_a_string",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    auth: {token_env: ONTAP_PASSWORD, token_command: [/bin/echo, x]}
    svms: all
""",
        [
            "{path}:5:5: clusters[0].auth: token auth needs exactly one of token_env and token_command (keep one of them)",
        ],
        id="token_env_and_token_command",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    auth: {username: admin, password_env: ONTAP_PASSWORD, command_timeout: 5}
    svms: all
""",
        [
            "{path}:5:5: clusters[0].auth: command_timeout is set but no password_command or token_command (remove command_timeout)",
        ],
        id="command_timeout_without_a_command",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    auth: {username: admin, password_command: [bin/get-pw, x], command_timeout: "30s"}
    svms: all
""",
        [
            "{path}:5:48: clusters[0].auth.password_command[0]: program 'bin/get-pw' not found or not executable (a bare name is looked up on PATH, a path starts at the inventory's folder)",
            "{path}:5:81: clusters[0].auth.command_timeout: expected a number, got '30s' (write a number, without quotes)",
        ],
        id="password_command_missing_program_and_bad_timeout",
    ),
    pytest.param(
        """\
version: 1
clusters:
  - name: c1
    host: c1.example.com
    svms: all
""",
        [
            "{path}:3:5: clusters[0]: cluster 'c1' has no auth (set auth: on the cluster, on one of its groups or under defaults:)",
        ],
        id="no_auth",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: null
groups:
  g: {auth: }
clusters:
  - name: c1
    host: c1.example.com
    groups: [g]
    auth: null
    svms: all
""",
        [
            "{path}:7:5: clusters[0]: cluster 'c1' has no auth (set auth: on the cluster, on one of its groups or under defaults:)",
        ],
        id="auth_null_at_every_level_is_no_auth",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: UNSET_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
""",
        [
            "{path}:3:41: defaults.auth.password_env: environment variable UNSET_PASSWORD is not set (export UNSET_PASSWORD before running)",
        ],
        id="unset_env_var",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    auth: {token_env: UNSET_TOKEN}
    svms: all
""",
        [
            "{path}:7:23: clusters[0].auth.token_env: environment variable UNSET_TOKEN is not set (export UNSET_TOKEN before running)",
        ],
        id="unset_token_env",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    auth: {client_cert: certs/c1.pem, client_key: c1.key}
    svms: all
""",
        [
            "{path}:7:25: clusters[0].auth.client_cert: file not found: {dir}/certs/c1.pem (relative paths start at the inventory's folder)",
            "{path}:7:51: clusters[0].auth.client_key: file not found: {dir}/c1.key (relative paths start at the inventory's folder)",
        ],
        id="missing_cert_file",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    auth: {username: admin, password_file: .}
    svms: all
""",
        [
            "{path}:7:44: clusters[0].auth.password_file: cannot read {dir}: Is a directory (check the path and permissions)",
        ],
        id="password_file_is_a_directory",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
    tls: {verify: true, ca_bundle: /nonexistent/ca.pem}
""",
        [
            "{path}:8:36: clusters[0].tls.ca_bundle: file not found: /nonexistent/ca.pem (relative paths start at the inventory's folder)",
        ],
        id="missing_ca_bundle",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
    key_id: "alias/{cluster}-{region}"
""",
        [
            "{path}:8:13: clusters[0].key_id: unknown placeholder {region} in key_id template (only {cluster} and {svm})",
        ],
        id="bad_key_id_placeholder",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
    key_id: "alias/{cluster"
""",
        [
            "{path}:8:13: clusters[0].key_id: unbalanced brace in key_id template 'alias/{cluster' (placeholders are {cluster} and {svm}; a key id has no other braces)",
        ],
        id="malformed_key_id_template",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: http://10.0.0.5:8080
    svms: all
""",
        [
            "{path}:6:11: clusters[0].host: http:// is refused for 10.0.0.5 (ONTAP speaks HTTPS only; use https://, http:// is for the loopback simulator alone)",
        ],
        id="http_not_loopback",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com:70000
    svms: all
""",
        [
            "{path}:6:11: clusters[0].host: invalid port in host 'c1.example.com:70000' (1-65535)",
        ],
        id="bad_port",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: east/01
    host: c1.example.com
    svms: all
""",
        [
            "{path}:5:11: clusters[0].name: invalid name 'east/01' (use letters, digits, '_', '.' and '-'; start with a letter, digit or '_')",
        ],
        id="bad_cluster_name",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
  max_fail_percent: 150
clusters:
  - name: c1
    host: c1.example.com
    svms: all
""",
        [
            "{path}:4:21: defaults.max_fail_percent: must be at most 100, got 150 (change the value)",
        ],
        id="percent_out_of_range",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
  waves: "1,ten%"
clusters:
  - name: c1
    host: c1.example.com
    svms: all
""",
        [
            "{path}:4:10: defaults.waves: invalid waves '1,ten%': 'ten%' is neither a count (e.g. 5) nor a percentage (e.g. 10%)",
        ],
        id="bad_waves",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
retry:
  65539436: {class: retry}
""",
        [
            "{path}:9:21: retry.65539436.class: expected 'retryable', 'retryable_bounded', 'fatal' or 'skip', got 'retry' (use one of these values)",
        ],
        id="retry_bad_class",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
retry:
  keystore_init: {class: retryable}
""",
        [
            "{path}:9:3: retry.keystore_init: invalid ONTAP error code 'keystore_init' (digits only, e.g. 65539436)",
        ],
        id="retry_bad_code",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
retry:
  "65539436": {base_delay_s: 60, max_delay_s: 5}
""",
        [
            "{path}:9:3: retry.65539436: base_delay_s 60 exceeds max_delay_s 5 (swap or fix them)",
        ],
        id="retry_delays_inverted",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms:
      - {name: vs1, keyid: current}
""",
        [
            "{path}:8:21: clusters[0].svms[0].keyid: unknown key 'keyid' (did you mean 'key_id'?)",
        ],
        id="svm_entry_unknown_key",
    ),
    pytest.param(
        """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
clusters:
  - name: c1
    host: c1.example.com
    svms: all
    tls: {verify: "no"}
""",
        [
            "{path}:8:19: clusters[0].tls.verify: expected true or false, got 'no' (write true or false, without quotes)",
        ],
        id="tls_verify_string",
    ),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _expected(lines: list[str], path: Path) -> list[str]:
    # replace, not format: the messages themselves hold braces ({cluster}, {svm})
    return [line.replace("{path}", str(path)).replace("{dir}", str(path.parent)) for line in lines]


def test_there_are_at_least_twenty_distinct_cases() -> None:
    """The acceptance bar: 20+ distinct broken inventories."""
    assert len({param.id for param in CASES}) == len(CASES) >= 20


@pytest.mark.parametrize(("text", "lines"), CASES)
def test_loader_reports_exact_lines(tmp_path: Path, text: str, lines: list[str]) -> None:
    """The loader raises InventoryError with exactly these lines, in file order."""
    path = _write(tmp_path, text)
    with pytest.raises(InventoryError) as caught:
        load(path, environ=ENVIRON)
    assert list(caught.value.lines) == _expected(lines, path)


@pytest.mark.parametrize(("text", "lines"), CASES)
def test_cli_exits_2_with_the_lines_and_no_traceback(
    tmp_path: Path,
    text: str,
    lines: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ontap-rekey validate` prints the same lines on stderr and exits 2."""
    for name, value in ENVIRON.items():
        monkeypatch.setenv(name, value)
    for name in ("UNSET_PASSWORD", "UNSET_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    path = _write(tmp_path, text)
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == _expected(lines, path)
    assert captured.out == ""
    assert "Traceback" not in captured.err
