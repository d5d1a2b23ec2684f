"""A real `ontap-rekey run` subprocess interrupted by SIGINT once rekeys are in flight.

The SIGINT goes to the child, never to the test process. Shared by the report and log
tests (not a test module itself).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

EXIT_TIMEOUT_S = 60.0
STARTED = "SELECT count(*) FROM transitions WHERE event = 'attempt.started'"


def interrupted_run(argv: list[str], state: Path, output: Path, *, started: int = 2) -> int:
    """Run `ontap-rekey run ARGV`, SIGINT it after `started` POST intents; its exit code.

    Intents are counted in the ledger `state` beyond those of earlier runs in it.
    """
    started += _count(state, STARTED)
    env = dict(os.environ, NO_COLOR="1")
    command = [sys.executable, "-m", "orchestrator", "run", *argv]
    with output.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        while _count(state, STARTED) < started:
            assert proc.poll() is None, output.read_text()
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()


def _count(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:  # the tables do not exist yet
        return 0
