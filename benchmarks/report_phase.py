"""The report phase of a run alone: what `ontap-rekey run` does once the rotation is over.

Reads the latest run of a ledger (or RUN_ID), writes report.json/md/html, junit.xml and
failed.txt into OUT and the recap into OUT/recap.txt, as `commands/common.py::finish`
does, and prints the phase's CPU seconds (user + system), wall seconds, RSS before and
peak RSS (MiB). Runs against an older checkout too (`PYTHONPATH=/tmp/base`: it then
reads the rows the way that version did), so before/after share one command:

    .venv/bin/python benchmarks/fleet.py --clusters 250 --svms 40 --tls --workdir /tmp/rep10k
    .venv/bin/python benchmarks/report_phase.py /tmp/rep10k/state.db /tmp/out --secret netapp-sim
    PYTHONPATH=/tmp/base .venv/bin/python benchmarks/report_phase.py ... /tmp/out-base ...
    for f in report.json report.md report.html junit.xml failed.txt recap.txt; do
        cmp /tmp/out/$f /tmp/out-base/$f; done   # (same OUT path for both: the recap names it)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator.ledger.store import Ledger
from orchestrator.observe import reports
from orchestrator.observe.recap import render_recap
from orchestrator.observe.redaction import register_secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("state", type=Path, help="the ledger")
    parser.add_argument("out", type=Path, help="the report folder to write")
    parser.add_argument("--run", help="the run id (default: the latest run)")
    parser.add_argument("--secret", help="register this secret first, as a run does")
    args = parser.parse_args()
    if args.secret:
        register_secret(args.secret)
    recap = io.StringIO()
    with Ledger.open(args.state, create=False) as ledger:
        run = ledger.get_run(args.run) if args.run else ledger.list_runs()[0]
        before = _rss_mib()
        cpu, wall = _cpu(), time.perf_counter()
        with _paused():
            targets, transitions = _reader()(ledger, run.run_id)
        reports.write_reports(args.out, run, targets, transitions, state=ledger.path)
        console = Console(file=recap, width=120, no_color=True)
        render_recap(
            run, targets, transitions, console, state=str(ledger.path), report_dir=str(args.out)
        )
        cpu, wall = _cpu() - cpu, time.perf_counter() - wall
    (args.out / "recap.txt").write_text(recap.getvalue(), encoding="utf-8")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {"targets": len(targets), "transitions": len(transitions), "cpu_s": round(cpu, 3)}
    result |= {"wall_s": round(wall, 3), "rss_before_mib": round(before, 1)}
    result |= {"peak_rss_mib": round(peak, 1), "growth_mib": round(peak - before, 1)}
    print(json.dumps(result))


def _reader() -> Callable[[Ledger, str], tuple[list[Any], list[Any]]]:
    """How `finish` reads the rows in this checkout (before issue 16: every column)."""
    try:
        from orchestrator.ledger import report_rows
    except ImportError:
        return lambda ledger, run_id: (ledger.targets(run_id), ledger.transitions(run_id))

    def read(ledger: Ledger, run_id: str) -> tuple[list[Any], list[Any]]:
        targets = report_rows.targets(ledger, run_id)
        return targets, report_rows.transitions(ledger, run_id, targets)

    return read


@contextlib.contextmanager
def _paused() -> Iterator[None]:
    """`finish` pauses the collector while it reads the rows (where it does)."""
    try:
        from orchestrator.observe.reports import collector
    except ImportError:
        yield
        return
    with collector.paused():
        yield


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    main()
