"""The report phase of a run alone: what `ontap-rekey run` does once the rotation is over.

Reads the latest run of a ledger (or RUN_ID) and calls `commands/common.py::finish` as
`run` does: report.json/md/html, junit.xml and failed.txt into OUT, the recap (and the
two lines after it) into OUT/recap.txt. The phase runs in a child process, so what is
measured ends where a run ends, at the process's exit, and counts every process it
makes: wall from the phase's start to the exit (`to_exit_s`) and to `finish`'s return
(`wall_s`), CPU user + system of the process and its children (`cpu_s`, from
`os.wait4`), RSS before the phase and the peak (MiB). On a shared machine the wall says
little: `critical_cpu_s` is what the wall would be on two idle cores, max(the process's
own CPU, its CPU up to the fork + the forked child's CPU) (no fork: its own CPU), with
`parent_cpu_s`, `prefix_cpu_s` and `child_cpu_s`. Runs against an older checkout
too (`PYTHONPATH=/tmp/base`), so before/after share one command:

    .venv/bin/python benchmarks/fleet.py --clusters 250 --svms 40 --tls --workdir /tmp/rep10k
    .venv/bin/python benchmarks/report_phase.py /tmp/rep10k/state.db /tmp/out --secret netapp-sim
    PYTHONPATH=/tmp/base .venv/bin/python benchmarks/report_phase.py ... /tmp/out ...
    for f in report.json report.md report.html junit.xml failed.txt recap.txt; do
        cmp /tmp/out/$f /tmp/out-base/$f; done   # (same OUT path for both: the recap names it)

`--repeat N` runs the phase N times (fresh processes) and prints each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

INNER = "--inner"


def main() -> None:
    if sys.argv[1:2] == [INNER]:
        inner(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("state", type=Path, help="the ledger")
    parser.add_argument("out", type=Path, help="the report folder to write")
    parser.add_argument("--run", help="the run id (default: the latest run)")
    parser.add_argument("--secret", help="register this secret first, as a run does")
    parser.add_argument("--repeat", type=int, default=1, help="phases to run, one at a time")
    args = parser.parse_args()
    argv = [str(args.state), str(args.out), args.run or "", args.secret or ""]
    for _ in range(args.repeat):
        print(json.dumps(outer(argv)), flush=True)


def outer(argv: list[str]) -> dict[str, object]:
    """One phase in a child process; its line, with the wall to its exit and its rusage."""
    process = subprocess.Popen(
        [sys.executable, __file__, INNER, *argv], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    ended = time.time()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"the phase exited {process.returncode}")
    result: dict[str, object] = json.loads(line)
    started = float(result.pop("started"))  # type: ignore[arg-type]
    result["to_exit_s"] = round(ended - started, 3)
    result["cpu_s"] = round(usage.ru_utime + usage.ru_stime - float(result.pop("cpu_before")), 3)  # type: ignore[arg-type]
    result["peak_rss_mib"] = round(usage.ru_maxrss / 1024, 1)
    result["load_1min"] = round(os.getloadavg()[0], 2)
    return result


def inner(argv: list[str]) -> None:
    """The phase itself (the child): `finish` on the ledger's run, the recap to a file."""
    from rich.console import Console

    from orchestrator.commands.common import finish
    from orchestrator.ledger.store import Ledger
    from orchestrator.observe.redaction import register_secret

    state, out, run_id, secret = Path(argv[0]), Path(argv[1]), argv[2], argv[3]
    forks = _count_forks()
    if secret:
        register_secret(secret)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "recap.txt", "w", encoding="utf-8") as recap:
        console = Console(file=recap, width=120, no_color=True, highlight=False)
        with Ledger.open(state, create=False) as ledger:
            run = ledger.get_run(run_id) if run_id else ledger.list_runs()[0]
            before, cpu, started = _rss_mib(), _cpu(), time.time()
            finish(ledger, run, out, console)
            wall = time.time() - started
    parent, child = _cpu() - cpu, _cpu(resource.RUSAGE_CHILDREN)
    prefix = forks[0] - cpu if forks else None
    critical = max(parent, prefix + child) if prefix is not None else parent
    result: dict[str, float | None] = {"started": started, "cpu_before": cpu}
    result |= {"wall_s": round(wall, 3)}
    result |= {"rss_before_mib": round(before, 1), "critical_cpu_s": round(critical, 3)}
    result |= {"parent_cpu_s": round(parent, 3), "child_cpu_s": round(child, 3)}
    result |= {"prefix_cpu_s": round(prefix, 3) if prefix is not None else None}
    result |= {"child_peak_rss_mib": round(_children_rss_mib(), 1)}
    print(json.dumps(result), flush=True)


def _count_forks() -> list[float]:
    """The process's CPU seconds at each `os.fork` (wrapped: the benchmark's own probe)."""
    at: list[float] = []
    real = os.fork

    def fork() -> int:
        at.append(_cpu())
        return real()

    os.fork = fork
    return at


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _children_rss_mib() -> float:
    """The peak RSS of the largest child (the forked writer), MiB; pages it shares with
    the run (copy on write) count in both."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    main()
