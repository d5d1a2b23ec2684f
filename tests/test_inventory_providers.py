# ruff: noqa: E501  (the expected lines are long by nature; kept whole so they can be grepped)
"""Inventory: `providers:`, `rekey:` and the key fields per provider (issue 15).

Broken cases go through the loader and must give exactly the expected lines, with file,
line and column (`{path}` stands for the file). Valid cases check the resolution.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import main
from orchestrator.config import load
from orchestrator.core.inventory import KEY_ID_CURRENT, GcpKeyTemplates
from orchestrator.core.options import resolve_options
from orchestrator.core.providers import Operation, Provider
from orchestrator.errors import InventoryError

ENVIRON = {"ONTAP_PASSWORD": "example"}
HEAD = """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
"""
ARN = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
AZURE_URL = "https://vault-1.vault.azure.net/keys/ontap-kek"

BROKEN = [
    pytest.param(
        HEAD
        + """\
clusters:
  - name: c1
    host: c1.example.com
    providers: [azure]
    key_id: "alias/ontap-kek"
    svms: all
""",
        [
            "{path}:8:13: clusters[0].key_id: for azure targets: 'alias/ontap-kek' is not an Azure Key Vault key URL (write the vault key URL, https://<vault>.vault.azure.net/keys/<name>[/<version>])",
        ],
        id="aws_alias_for_pinned_azure",
    ),
    pytest.param(
        HEAD
        + """\
  key_id: "https://vault-1.vault.azure.net/keys/ontap-kek"
clusters:
  - name: c1
    host: c1.example.com
    providers: [aws]
    svms: all
""",
        [
            "{path}:4:11: defaults.key_id: for aws targets: a URL is not an AWS KMS key, got 'https://vault-1.vault.azure.net/keys/ontap-kek' (write an AWS key id, key ARN (arn:aws:kms:...), alias name (alias/...) or alias ARN)",
        ],
        id="azure_url_in_defaults_for_pinned_aws_cluster",
    ),
    pytest.param(
        HEAD
        + """\
groups:
  eu: {providers: [azure]}
clusters:
  - name: c1
    host: c1.example.com
    groups: [eu]
    svms:
      - {name: s1, key_id: "https://vault-1.vault.azure.net/secrets/ontap-kek"}
""",
        [
            "{path}:11:28: clusters[0].svms[0].key_id: for azure targets: 'https://vault-1.vault.azure.net/secrets/ontap-kek' is not an Azure Key Vault key URL (write the vault key URL, https://<vault>.vault.azure.net/keys/<name>[/<version>])",
        ],
        id="azure_secret_url_pinned_by_group",
    ),
    pytest.param(
        HEAD
        + """\
clusters:
  - name: c1
    host: c1.example.com
    svms:
      - {name: s1, key_name: "projects/p1/locations/global/keyRings/r1/cryptoKeys/k1"}
""",
        [
            "{path}:8:30: clusters[0].svms[0].key_name: a GCP key_name has no '/', got 'projects/p1/locations/global/keyRings/r1/cryptoKeys/k1' (the key's name alone, e.g. ontap-kek; put the ring in key_ring_name, its location in key_ring_location and the project in project_id; ONTAP refuses it with 65537753)",
        ],
        id="gcp_key_name_with_slash_even_unpinned",
    ),
    pytest.param(
        HEAD
        + """\
clusters:
  - name: c1
    host: c1.example.com
    providers: [gcp]
    svms:
      - {name: s1, key_id: "ontap-kek"}
""",
        [
            "{path}:9:28: clusters[0].svms[0].key_id: key_id does not name a Google Cloud KMS key (these targets are pinned to providers: [gcp]; write key_name: NAME instead)",
        ],
        id="key_id_on_a_gcp_pinned_svm",
    ),
    pytest.param(
        HEAD
        + """\
clusters:
  - name: c1
    host: c1.example.com
    providers: [aws]
    key_ring_name: ring-1
    svms: all
""",
        [
            "{path}:8:5: clusters[0].key_ring_name: key_ring_name applies to gcp targets only (these targets are pinned to providers: [aws]; remove it or pin gcp)",
        ],
        id="gcp_field_on_an_aws_pinned_cluster",
    ),
    pytest.param(
        HEAD
        + """\
clusters:
  - name: east.01
    host: c1.example.com
    providers: [gcp]
    key_name: "{cluster}-kek"
    svms: all
""",
        [
            "{path}:8:15: clusters[0].key_name: for cluster east.01: 'east.01-kek' is not a GCP key_name (1-63 letters, digits, '_' or '-')",
        ],
        id="gcp_template_fails_with_the_real_cluster_name",
    ),
    pytest.param(
        HEAD
        + """\
clusters:
  - name: c1
    host: c1.example.com
    providers: [azure]
    key_id: "https://v-{svm}.vault.azure.net/keys/kek"
    svms: all
  - name: c2
    host: c2.example.com
    providers: [azure]
    key_id: "https://{cluster}.vault.azure.net/keys/kek"
    svms: all
""",
        [
            "{path}:13:13: clusters[1].key_id: for azure targets: 'https://c2.vault.azure.net/keys/kek' is not an Azure Key Vault key URL (write the vault key URL, https://<vault>.vault.azure.net/keys/<name>[/<version>])",
        ],
        id="azure_template_checked_with_the_real_cluster_name_only",
    ),
    pytest.param(
        HEAD
        + """\
clusters:
  - name: c1
    host: c1.example.com
    key_ring_location: "US East"
    svms: all
""",
        [
            "{path}:7:24: clusters[0].key_ring_location: 'US East' is not a GCP key_ring_location (a location such as global or us-east1: lowercase letters, digits, '-')",
        ],
        id="gcp_location_shape",
    ),
    pytest.param(
        HEAD
        + """\
clusters:
  - name: c1
    host: c1.example.com
    providers: []
    svms: all
""",
        [
            "{path}:7:5: clusters[0].providers: empty providers list (name one or more of aws, azure, gcp, barbican, or remove the key)",
        ],
        id="empty_providers",
    ),
    pytest.param(
        HEAD
        + """\
clusters:
  - name: c1
    host: c1.example.com
    providers: [aws, kmip]
    svms: all
""",
        [
            "{path}:7:22: clusters[0].providers[1]: expected 'aws', 'azure', 'gcp' or 'barbican', got 'kmip' (use one of these values)",
        ],
        id="unknown_provider",
    ),
    pytest.param(
        HEAD
        + """\
  rekey: both
clusters:
  - name: c1
    host: c1.example.com
    svms: all
""",
        [
            "{path}:4:10: defaults.rekey: expected 'external' or 'internal', got 'both' (use one of these values)",
        ],
        id="bad_rekey",
    ),
    pytest.param(
        HEAD
        + """\
clusters:
  - name: c1
    host: c1.example.com
    rekey: internal
    svms: all
""",
        [
            "{path}:7:5: clusters[0].rekey: unknown key 'rekey' (allowed here: auth, groups, host, include_cluster_scope, key_id, key_name, key_ring_location, key_ring_name, name, per_cluster, priority, project_id, providers, svms, tags, tls, uuid)",
        ],
        id="rekey_only_in_defaults",
    ),
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "lines"), BROKEN)
def test_loader_reports_exact_lines(tmp_path: Path, text: str, lines: list[str]) -> None:
    """Each broken inventory gives exactly these lines (file, line, column, path)."""
    path = _write(tmp_path, text)
    with pytest.raises(InventoryError) as caught:
        load(path, environ=ENVIRON)
    assert list(caught.value.lines) == [line.replace("{path}", str(path)) for line in lines]


def test_unpinned_literals_wait_for_discovery(tmp_path: Path) -> None:
    """Without a pinned provider, an Azure URL or an AWS ARN loads (checked at discovery)."""
    text = (
        HEAD
        + f"""\
clusters:
  - name: c1
    host: c1.example.com
    providers: [aws, azure]
    key_id: "{AZURE_URL}"
    svms:
      - {{name: s1, key_id: "{ARN}"}}
"""
    )
    inventory = load(_write(tmp_path, text), environ=ENVIRON).inventory
    assert inventory.clusters[0].key_id == AZURE_URL
    assert inventory.clusters[0].svms[0].key_id == ARN


def test_valid_pinned_keys_load(tmp_path: Path) -> None:
    """A well-shaped key per pinned provider loads, templates included."""
    text = (
        HEAD
        + """\
clusters:
  - name: aws-1
    host: c1.example.com
    providers: [aws]
    key_id: "alias/ontap-{cluster}-{svm}"
    svms: all
  - name: az-1
    host: c2.example.com
    providers: [azure]
    key_id: "https://vault-1.vault.azure.net/keys/kek-{svm}/0123456789abcdef0123456789abcdef"
    svms: all
  - name: gcp-1
    host: c3.example.com
    providers: [gcp]
    key_name: "kek-{svm}"
    project_id: my-project-1
    key_ring_location: us-east1
    key_ring_name: ontap
    svms: [s1]
  - name: bb-1
    host: c4.example.com
    providers: [barbican]
    svms: all
"""
    )
    inventory = load(_write(tmp_path, text), environ=ENVIRON).inventory
    gcp = inventory.cluster("gcp-1")
    assert gcp.providers == (Provider.GCP,)
    assert gcp.svms[0].gcp_key == GcpKeyTemplates("kek-{svm}", "my-project-1", "us-east1", "ontap")


def test_providers_and_gcp_fields_resolve_from_the_first_level(tmp_path: Path) -> None:
    """SVM entry, then cluster, then groups in order, then defaults; each field alone."""
    text = """\
version: 1
defaults:
  auth: {username: admin, password_env: ONTAP_PASSWORD}
  project_id: from-defaults
  key_ring_name: ring-defaults
groups:
  first: {providers: [gcp], key_ring_location: europe-west1}
  second: {providers: [aws, azure], key_ring_location: us-east1}
clusters:
  - name: c1
    host: c1.example.com
    groups: [first, second]
    key_name: cluster-kek
    svms:
      - {name: s1, providers: [azure, gcp]}
      - {name: s2, key_name: svm-kek, key_ring_name: ring-s2}
  - name: c2
    host: c2.example.com
    svms: all
"""
    inventory = load(_write(tmp_path, text), environ=ENVIRON).inventory
    c1, c2 = inventory.cluster("c1"), inventory.cluster("c2")
    assert c1.providers == (Provider.GCP,)
    assert c1.gcp_key == GcpKeyTemplates(
        "cluster-kek", "from-defaults", "europe-west1", "ring-defaults"
    )
    s1, s2 = c1.svms
    assert s1.providers == (Provider.AZURE, Provider.GCP)
    assert s1.gcp_key == c1.gcp_key
    assert s2.providers == (Provider.GCP,)
    assert s2.gcp_key == GcpKeyTemplates("svm-kek", "from-defaults", "europe-west1", "ring-s2")
    assert c2.providers is None  # every provider
    assert c2.gcp_key.key_name == KEY_ID_CURRENT


def test_rekey_from_defaults_and_the_command_line_wins(tmp_path: Path) -> None:
    """`defaults: {rekey: internal}` sets the operation; --rekey external overrides it;
    without either it is external."""
    text = HEAD + "  rekey: internal\nclusters:\n  - {name: c1, host: c1.example.com, svms: all}\n"
    defaults = load(_write(tmp_path, text), environ=ENVIRON).inventory.defaults
    assert defaults.rekey is Operation.INTERNAL
    assert resolve_options({}, defaults).rekey is Operation.INTERNAL
    assert resolve_options({"rekey": Operation.EXTERNAL}, defaults).rekey is Operation.EXTERNAL
    plain = load(
        _write(tmp_path, HEAD + "clusters:\n  - {name: c1, host: h, svms: all}\n"), environ=ENVIRON
    )
    assert resolve_options({}, plain.inventory.defaults).rekey is Operation.EXTERNAL


GCP_NAMES = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_-", min_size=1, max_size=63)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=GCP_NAMES, cut=st.integers(min_value=0, max_value=63))
def test_gcp_key_names_load_unless_they_hold_a_slash(tmp_path: Path, name: str, cut: int) -> None:
    """Any GCP-shaped key_name loads as written; the same name with a '/' inside is
    refused at its line and column."""
    text = HEAD + f'clusters:\n  - name: c1\n    host: h\n    svms: all\n    key_name: "{name}"\n'
    path = _write(tmp_path, text)
    assert load(path, environ=ENVIRON).inventory.clusters[0].gcp_key.key_name == name
    broken = name[:cut] + "/" + name[cut:]
    path.write_text(text.replace(f'"{name}"', f'"{broken}"'), encoding="utf-8")
    with pytest.raises(InventoryError) as caught:
        load(path, environ=ENVIRON)
    (line,) = caught.value.lines
    assert line.startswith(f"{path}:8:15: clusters[0].key_name: a GCP key_name has no '/'")


@pytest.mark.parametrize(("text", "lines"), BROKEN)
def test_validate_exits_2_with_the_lines_and_no_traceback(
    tmp_path: Path,
    text: str,
    lines: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ontap-rekey validate` prints the same lines on stderr and exits 2."""
    monkeypatch.setenv("ONTAP_PASSWORD", "example")
    path = _write(tmp_path, text)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for line in lines:
        assert line.replace("{path}", str(path)) in err
