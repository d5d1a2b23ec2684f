"""`ontap-rekey simulate` as a user runs it: a process of its own, until terminated."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchestrator.cli import main
from orchestrator.commands.simulate import READY_LINE
from orchestrator.config.loader import load_inventory


@contextmanager
def simulate(*args: str) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Run `python -m orchestrator.simulator ARGS` until it says it is ready; stop it after.

    Yields the process and the lines it printed up to the ready line.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.simulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, _until_ready(process)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()


def _until_ready(process: subprocess.Popen[str]) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:  # blocks on the pipe, no polling: the line is the signal
        lines.append(line.rstrip("\n"))
        if line.startswith(READY_LINE):
            return lines
    raise AssertionError(f"simulate exited with {process.wait()}: {lines}")


def read_json(path: Path) -> Any:
    """Parse a JSON file."""
    return json.loads(path.read_text(encoding="utf-8"))


def test_simulate_writes_an_inventory_that_validates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--clusters 3 --svms 5 --write-inventory X: `validate X` exits 0; SIGTERM exits 0."""
    inventory, ready = tmp_path / "fleet.yaml", tmp_path / "ready.json"
    with simulate(
        "--clusters",
        "3",
        "--svms",
        "5",
        "--write-inventory",
        str(inventory),
        "--ready-file",
        str(ready),
    ) as (process, lines):
        urls = read_json(ready)["urls"]
        monkeypatch.setenv("ONTAP_SIM_PASSWORD", "netapp-sim")
        assert main(["validate", str(inventory)]) == 0
        response = httpx.get(f"{urls['c003']}/api/cluster", auth=("admin", "netapp-sim"))
    assert process.returncode == 0
    assert response.json()["name"] == "c003"
    assert "export ONTAP_SIM_PASSWORD=netapp-sim" in lines
    assert [c["host"] for c in yaml.safe_load(inventory.read_text())["clusters"]] == [
        urls["c001"],
        urls["c002"],
        urls["c003"],
    ]
    assert not ready.exists()  # removed on exit: a stale ready file would mislead


def test_simulate_with_tls_writes_a_bundle_that_verifies_every_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--tls: the inventory's ca_bundle verifies each cluster's certificate."""
    inventory, ready = tmp_path / "tls.yaml", tmp_path / "ready.json"
    with simulate(
        "--clusters",
        "3",
        "--svms",
        "2",
        "--tls",
        "--explicit-svms",
        "--write-inventory",
        str(inventory),
        "--ready-file",
        str(ready),
    ):
        monkeypatch.setenv("ONTAP_SIM_PASSWORD", "netapp-sim")
        loaded = load_inventory(inventory)
        names = []
        for cluster in loaded.clusters:
            assert cluster.tls.ca_bundle is not None
            assert cluster.base_url.startswith("https://127.0.0.1:")
            context = ssl.create_default_context(cafile=str(cluster.tls.ca_bundle))
            response = httpx.get(
                f"{cluster.base_url}/api/cluster", verify=context, auth=("admin", "netapp-sim")
            )
            names.append(response.json()["name"])
    assert names == ["c001", "c002", "c003"]
    assert [len(c.svms) for c in loaded.clusters] == [2, 2, 2]


def test_a_fleet_file_and_a_scenario(tmp_path: Path) -> None:
    """--fleet and --scenario: an unreachable cluster is listed and refuses connections."""
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("clusters:\n  - {name: east, svms: 2}\n  - {name: west, svms: [fin]}\n")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("faults:\n  - {kind: unreachable, cluster: west}\n")
    ready = tmp_path / "ready.json"
    with simulate("--fleet", str(fleet), "--scenario", str(scenario), "--ready-file", str(ready)):
        document = read_json(ready)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{document['urls']['west']}/api/cluster")
    assert document["unreachable"] == ["west"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "10.20.0.12"], "loopback addresses only"),
        (["--host", "localhost.example.com"], "loopback addresses only"),
        (["--fleet", "f.yaml", "--clusters", "2"], "exclude each other"),
        (["--scenario", "missing.yaml"], "cannot read"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything listens: exit 2, a one-line error."""
    assert main(["simulate", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_a_broken_scenario_names_the_file_and_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scenario with an unknown fault kind: exit 2, the file named in the message."""
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("faults:\n  - {kind: meteor_strike}\n")
    assert main(["simulate", "--scenario", str(scenario)]) == 2
    assert str(scenario) in capsys.readouterr().err


def test_a_port_in_use_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--base-port on a taken port: exit 2 and a one-line reason, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["simulate", "--clusters", "1", "--base-port", str(port)]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err
