"""Regression smoke of `benchmarks/report_phase.py` on the synthetic run: it runs `finish`
in a child process, writes every report file and the recap, and prints its numbers (a
fork was made: the child's CPU is counted). Correctness facts only; never speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from orchestrator.ledger.store import Ledger
from orchestrator.observe.reports import FILE_NAMES
from tests.synthetic_run import SECRET, make_rows, make_run

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "report_phase.py"


def test_report_phase_benchmark_writes_every_file_and_counts_the_child(tmp_path: Path) -> None:
    run = make_run()
    rows, steps = make_rows(run)
    with Ledger.open(tmp_path / "state.db") as ledger:
        ledger.create_run(run)
        ledger.add_targets(rows)
        by_key = {row.key: row for row in rows}
        ledger.write([(by_key[step.key], step) for step in steps])
    out = tmp_path / "out"
    argv = [sys.executable, str(SCRIPT), str(tmp_path / "state.db"), str(out), "--secret", SECRET]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["prefix_cpu_s"] is not None  # the phase forked its writer
    assert result["critical_cpu_s"] <= result["cpu_s"] + 0.05
    assert {"to_exit_s", "parent_cpu_s", "child_cpu_s", "peak_rss_mib"} <= set(result)
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILE_NAMES.values(), "recap.txt"])
    recap = (out / "recap.txt").read_text(encoding="utf-8")
    assert f"run id: {run.run_id}" in recap and SECRET not in recap
