"""Issue 13 points 8, 9 and 11 through the command line, on a fleet served on 127.0.0.1.

8: the recap, report.md and report.html say why the run stopped and the exact commands
   that continue it, name the targets per reason and give the hint for that reason;
9: progress, recap and report.json count the same retries;
11: "1 target on 1 cluster".
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shlex
import struct
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.ledger.store import Ledger
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.server import running_simulator
from tests.simfleet import SOCKET_JOBS, scenario

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)


def _fleet(tmp_path: Path, clusters: int, svms: int, *faults: dict[str, Any]) -> Iterator[Path]:
    spec = FleetSpec.generate(clusters, svms)
    with running_simulator(spec, scenario(*faults, **SOCKET_JOBS), seed=3) as sim:
        inventory = write_inventory(tmp_path / "inv.yaml", spec, sim.urls, ca_bundle=None)
        retry = "retry:\n  '65539436': {base_delay_s: 0.05, max_delay_s: 0.1}\n"
        inventory.write_text(inventory.read_text() + retry)
        yield inventory


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["run", *argv])
    return code, capsys.readouterr().out


def _run_id() -> str:
    with Ledger.open(Path("state.db")) as ledger:
        return ledger.list_runs()[0].run_id


def test_an_aborted_run_says_why_names_the_targets_and_the_exact_next_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = [
        {"kind": "version", "cluster": "c003", "version": "9.11.1"},
        {"kind": "keys_in_admin_svm", "cluster": "c002", "svm": "svm0[1-4]"},
    ]
    for inventory in _fleet(tmp_path, 3, 6, *faults):
        args = [str(inventory), "--yes", "--state", "state.db", "--report-dir", "reports"]
        code, out = _run(capsys, *args, "--waves", "100%", "--per-cluster", "1")
        assert code == 4, out
        run_id = _run_id()
        assert "status: aborted, exit code 4: the failure budget ran out: more than 10 %" in out
        resume = f"ontap-rekey resume {run_id} --state state.db"
        rerun = f"ontap-rekey run {inventory} --targets @reports/failed.txt --state state.db"
        assert f"next: {resume}\n" in out
        assert f"next: {rerun}\n" in out
        # every reason with the names behind it and its own hint
        assert re.search(r"skipped: unsupported_version +│ - +│ c003/\* ", out), out
        assert "The cluster's ONTAP version" in out  # its own hint, not the generic one
        assert re.search(r"failed +│ 65537547 │ c002/svm01", out), out
        md = Path("reports/report.md").read_text()
        state = Path("state.db").resolve()
        assert "## Why it stopped, and what next" in md
        assert f"- `ontap-rekey resume {run_id} --state {state}`" in md
        assert "| skipped: unsupported_version | - | 1 | c003/* | The cluster's ONTAP version" in md
        html = Path("reports/report.html").read_text()
        assert '<div id="next"><p>Stopped: the failure budget ran out' in html
        assert '<table id="reasons">' in html and "c002/svm01" in html
        # the command printed is exact: it runs as printed
        argv = [*shlex.split(resume)[1:], "--report-dir", "resumed"]
        assert main(argv) in (3, 4)
        assert json.loads(Path("resumed/report.json").read_text())["run"]["run_id"] == run_id


def test_progress_recap_and_report_count_the_same_retries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Settle pauses after dropped connections are not retries anywhere; the re-sent
    attempts of an initializing key store are, everywhere."""
    faults = [
        {"kind": "drop_after", "cluster": "c001", "svm": "svm0[12]", "rate": 1.0},
        {"kind": "keystore_initializing", "cluster": "c002", "svm": "svm01", "attempts": 2},
    ]
    for inventory in _fleet(tmp_path, 2, 4, *faults):
        args = [str(inventory), "--yes", "--state", "state.db", "--report-dir", "reports"]
        code, out = _run(capsys, *args, "--waves", "100%", "--request-timeout", "1")
        assert code == 0, out
    progress = re.findall(r"^progress: .*retries (\d+)$", out, re.MULTILINE)
    recap = re.search(r"│ total +│.*│ +(\d+) │ +[\d.]+ s │$", out, re.MULTILINE)
    assert recap is not None, out
    report = json.loads(Path("reports/report.json").read_text())["totals"]["retries"]
    with Ledger.open(Path("state.db")) as ledger:
        attempts = sum(row.attempts - 1 for row in ledger.targets(_run_id()))
    assert int(progress[-1]) == int(recap.group(1)) == report == attempts == 2


def test_one_target_on_one_cluster_is_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for inventory in _fleet(tmp_path, 1, 2):
        args = [str(inventory), "--yes", "--state", "state.db", "--report-dir", "reports"]
        code, out = _run(capsys, *args, "--svm", "svm01")
        assert code == 0, out
    assert "progress: 1 target on 1 cluster, waves [1]" in out
    assert "started: 1 target\n" in out
    assert "1 targets" not in out and "1 clusters" not in out


def _on_a_terminal(argv: list[str], columns: int) -> str:
    """Run `ontap-rekey ARGV` on a pseudo-terminal `columns` wide; its output, ANSI removed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = dict(os.environ, COLUMNS=str(columns), LINES="40", TERM="xterm", NO_COLOR="1")
    command = [sys.executable, "-m", "orchestrator", *argv]
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))


def test_recap_on_a_60_column_terminal_keeps_cluster_names_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`report RUN_ID` on a 60-column terminal: every cluster named in full, no `c0…`."""
    faults = [{"kind": "keys_in_admin_svm", "cluster": "c002", "svm": "svm01"}]
    for inventory in _fleet(tmp_path, 2, 3, *faults):
        args = [str(inventory), "--yes", "--state", "state.db", "--report-dir", "reports"]
        code, _ = _run(capsys, *args, "--waves", "100%", "--max-fail-percent", "100")
        assert code == 3
    text = _on_a_terminal(["report", _run_id(), "--state", "state.db"], columns=60)
    assert "…" not in text, text
    assert re.search(r"^c001: 3 targets: rekeyed 3", text, re.MULTILINE), text
    assert re.search(r"^c002: 3 targets: rekeyed 2, failed 1", text, re.MULTILINE), text
    assert "- failed 65537547 (1): c002/svm01" in text
