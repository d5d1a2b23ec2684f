"""Secrets from the administrator's vault (`password_command`, `token_command`), end to
end: the command runs without a shell, its stdout is the secret, and its failure is one
line naming the cluster, never the secret (issue 13, "vault lookups")."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.observe.redaction import clear_secrets
from orchestrator.ontap.secret_command import forget_command_secrets
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import inventory_document
from orchestrator.simulator.server import Simulation, running_simulator
from tests.simfleet import FAST_SOCKET_JOBS

pytestmark = pytest.mark.slow

PASSWORD = "vault-Held-Secret-81d2"
TOKEN = "eyJvault.Token.Secret-5e0c"


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)
    forget_command_secrets()
    yield
    forget_command_secrets()
    clear_secrets()


def _script(path: Path, body: str) -> Path:
    """An executable Python script (what a vault CLI wrapper would be)."""
    path.write_text(f"#!{sys.executable}\nimport sys, time\n{body}\n")
    path.chmod(0o700)
    return path


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    spec = FleetSpec.generate(2, 2, password=PASSWORD)
    spec = FleetSpec(clusters=[c.model_copy(update={"tokens": [TOKEN]}) for c in spec.clusters])
    with running_simulator(spec, FAST_SOCKET_JOBS, seed=3) as sim:

        def write(auth: dict[str, Any]) -> tuple[Simulation, Path]:
            document = inventory_document(spec, sim.urls, ca_bundle=None)
            document["defaults"]["auth"] = auth
            path = tmp_path / "inv.yaml"
            path.write_text(yaml.safe_dump(document, sort_keys=False))
            return sim, path

        yield write


def _run(inventory: Path, *extra: str) -> int:
    args = [str(inventory), "--state", "s.db", "--report-dir", "r", "--yes", "--waves", "100%"]
    return main(["run", *args, "--log-file", "run.jsonl", *extra])


def _requests(sim: Simulation) -> int:
    return sum(len(c["requests"]) for c in sim.fleet.stats()["clusters"].values())


def _everything_written(tmp_path: Path) -> str:
    """Every file the run left (ledger, logs, reports), the scripts holding the secret aside."""
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".py"]
    return "".join(p.read_bytes().decode("utf-8", errors="replace") for p in files)


def test_password_command_rekeys_and_the_secret_is_nowhere(
    serve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vault = _script(tmp_path / "vault.py", f"print('  {PASSWORD}  ')")  # stripped
    sim, inventory = serve(
        {"username": "admin", "password_command": ["./vault.py", "kv", "get", "ontap"]}
    )
    assert _run(inventory) == 0
    assert all(len(v["rekeys"]) == 1 for v in sim.fleet.stats()["svms"].values())
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err
    assert PASSWORD not in _everything_written(tmp_path)
    assert vault.exists()


def test_token_command_authenticates_with_a_bearer_token(
    serve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _script(tmp_path / "token.py", f"print({TOKEN!r})")
    sim, inventory = serve({"token_command": [sys.executable, str(tmp_path / "token.py")]})
    assert _run(inventory) == 0
    assert sum(len(v["rekeys"]) for v in sim.fleet.stats()["svms"].values()) == 4
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err + _everything_written(tmp_path)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (f"print('{PASSWORD}', file=sys.stderr); sys.exit(3)", "exited with status 3"),
        ("pass", "printed nothing"),
        ("time.sleep(60)", "did not finish within 0.5 s (set auth.command_timeout)"),
    ],
)
def test_a_failing_command_is_one_line_naming_the_cluster(
    serve: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: str,
    problem: str,
) -> None:
    _script(tmp_path / "vault.py", body)
    auth = {"username": "admin", "password_command": ["./vault.py"], "command_timeout": 0.5}
    sim, inventory = serve(auth)
    assert _run(inventory) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("error: c001: auth.password_command (")
    assert problem in err
    assert PASSWORD not in err + _everything_written(tmp_path)
    assert _requests(sim) == 0  # no cluster was contacted


def test_a_missing_program_is_an_inventory_error_at_its_line(
    serve: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _, inventory = serve({"username": "admin", "password_command": ["no-such-vault-cli", "get"]})
    assert _run(inventory) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{inventory}:")
    assert "defaults.auth.password_command[0]: program 'no-such-vault-cli' not found" in line


def test_validate_json_shows_the_argv_and_never_runs_it(
    serve: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "ran"
    _script(tmp_path / "vault.py", f"open({str(marker)!r}, 'w'); print('x')")
    _, inventory = serve({"username": "admin", "password_command": ["./vault.py", "-f", "pw"]})
    assert main(["validate", str(inventory), "--json"]) == 0
    auth = json.loads(capsys.readouterr().out)["clusters"][0]["auth"]
    assert auth["password_command"] == [str(tmp_path / "vault.py"), "-f", "pw"]
    assert auth["command_timeout_s"] == 30.0
    assert not marker.exists()
