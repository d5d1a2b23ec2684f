"""The chaos suite at scale: the fault mix of `tests/test_chaos.py` over a big fleet, N seeds.

Each seed serves a fresh fleet (loopback sockets, `running_simulator`), runs `execute_run`
in-process against it with every fault of issue 8 at once, and checks every invariant
against the simulator's ground truth (`tests/test_chaos.py::check_invariants`).

    .venv/bin/python benchmarks/chaos.py --clusters 250 --svms 40 --seeds 10
    .venv/bin/python benchmarks/chaos.py --clusters 20 --svms 20 --seeds 3 --first-seed 1

`--matrix` runs the chaos mix with SIGKILL + resume at seeded moments in every cell of
ONTAP version x job description x job expiry x busy answer x 201 body
(`tests/chaos_matrix.py`), in both orders of a run (`--orders`: the plan first, the 108
cells numbered as always, then discovery overlapped with the rotation, under a global
limit a third of the clusters' so that they take lanes), one JSON line per cell:

    .venv/bin/python benchmarks/chaos.py --matrix --clusters 50 --svms 40 --kills 2
    .venv/bin/python benchmarks/chaos.py --matrix --orders overlapped --cells 0:12

`--mixed` runs the same (chaos mix, SIGKILL + resume at seeded moments) on the mixed
fleet of issue 15: AWS, Azure and GCP round-robin over the SVMs, ONTAP 9.12.1 to 9.17.1
round-robin over the clusters, `run --rekey external` to its end and then `run --rekey
internal` on the same fleet and ledger (`--rekey both`, the default), each checked per
operation (`tests/chaos_matrix.py::check_operation`), one JSON line per run (`--overlap`:
each run's discovery overlapped with its rotation):

    nice -n 5 .venv/bin/python benchmarks/chaos.py --mixed --clusters 54 --svms 40 --kills 2
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.observe.logging import configure_logging
from orchestrator.simulator.inventory_writer import PASSWORD_ENV
from tests.test_chaos import run_chaos


def main() -> int:
    """Run the seeds; print one line per seed; exit 1 at the first broken invariant."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clusters", type=int, default=250)
    parser.add_argument("--svms", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=None, help="default 10, --mixed 1")
    parser.add_argument("--first-seed", type=int, default=101)
    parser.add_argument(
        "--timeout-scale", type=float, default=10.0, help="x the 0.4 s read timeout and 0.6 s slow"
    )
    parser.add_argument("--matrix", action="store_true", help="every cell of the switch matrix")
    parser.add_argument("--kills", type=int, default=2, help="--matrix: SIGKILLs per cell")
    parser.add_argument("--cells", default=None, help="--matrix: only cells A:B (slice)")
    parser.add_argument(
        "--orders",
        choices=["both", "plan-first", "overlapped"],
        default="both",
        help="--matrix: the run orders (both: the plan-first cells, then the overlapped)",
    )
    parser.add_argument("--overlap", action="store_true", help="--mixed: overlapped runs")
    parser.add_argument("--mixed", action="store_true", help="the mixed-provider fleet")
    parser.add_argument(
        "--rekey", choices=["external", "internal", "both"], default="both", help="--mixed only"
    )
    args = parser.parse_args()
    if args.seeds is None:
        args.seeds = 1 if args.mixed else 10
    os.environ.setdefault(PASSWORD_ENV, "netapp-sim")
    configure_logging(log_format="json", stream=open(os.devnull, "w"), stream_level="error")  # noqa: SIM115
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.matrix:
        return matrix(args)
    if args.mixed:
        return mixed(args)
    failures = 0
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        with tempfile.TemporaryDirectory(prefix="ontap-chaos-") as tmp:
            try:
                result = run_chaos(
                    seed, args.clusters, args.svms, Path(tmp), timeout_scale=args.timeout_scale
                )
            except AssertionError as exc:
                failures += 1
                print(f"seed {seed}: INVARIANT BROKEN: {str(exc)[:2000]}", flush=True)
                continue
        print(
            f"seed {seed}: ok  targets {result.targets}  {result.seconds:.1f} s  "
            f"accepted rekeys {result.accepted}  double {result.double}  "
            f"outcomes {dict(sorted(result.outcomes.items()))}",
            flush=True,
        )
    total = time.perf_counter() - started
    print(f"{args.seeds - failures}/{args.seeds} seeds held every invariant ({total:.0f} s)")
    return 1 if failures else 0


def matrix(args: argparse.Namespace) -> int:
    """Every cell; one JSON line each; a summary; exit 1 if any cell broke an invariant."""
    from tests.chaos_matrix import ORDERS, all_cells, result_line, run_cell

    os.environ.setdefault(PASSWORD_ENV, "netapp-sim")
    configure_logging(log_format="json", stream=open(os.devnull, "w"), stream_level="error")  # noqa: SIM115
    cells = all_cells(ORDERS if args.orders == "both" else [args.orders])
    if args.cells:
        start, _, stop = args.cells.partition(":")
        cells = cells[int(start or 0) : int(stop) if stop else None]
    broken, unverified, targets = 0, 0, 0
    started = time.perf_counter()
    for number, cell in enumerate(cells):
        with tempfile.TemporaryDirectory(prefix="ontap-matrix-") as tmp:
            try:
                result = run_cell(
                    cell,
                    clusters=args.clusters,
                    svms=args.svms,
                    kills=args.kills,
                    seed=args.first_seed + number,
                    workdir=Path(tmp),
                )
            except AssertionError as exc:
                broken += 1
                print(f"BROKEN {cell.label()}: {str(exc)[:2000]}", flush=True)
                continue
        targets += result.targets
        unverified += sum(result.unverified.values())
        print(result_line(result), flush=True)
    total = time.perf_counter() - started
    print(
        f"{len(cells) - broken}/{len(cells)} cells held every invariant; {targets} targets, "
        f"{unverified} unverified ({total:.0f} s)"
    )
    return 1 if broken else 0


def mixed(args: argparse.Namespace) -> int:
    """Per seed, a fresh mixed fleet and its rotations; one JSON line per rotation; a
    summary; exit 1 if any rotation broke an invariant (the seed's later ones not run)."""
    from orchestrator.core.providers import Operation
    from tests.chaos_matrix import mixed_runs, result_line

    operations = list(Operation) if args.rekey == "both" else [Operation(args.rekey)]
    broken, runs, targets, unverified = 0, 0, 0, 0
    started = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        with tempfile.TemporaryDirectory(prefix="ontap-mixed-") as tmp:
            rotations = mixed_runs(
                clusters=args.clusters,
                svms=args.svms,
                kills=args.kills,
                seed=seed,
                workdir=Path(tmp),
                operations=operations,
                overlapped=args.overlap,
            )
            try:
                for result in rotations:
                    runs += 1
                    targets += result.targets
                    unverified += sum(result.unverified.values())
                    print(result_line(result), flush=True)
            except AssertionError as exc:
                broken += 1
                print(f"BROKEN seed {seed}: {str(exc)[:2000]}", flush=True)
    total = time.perf_counter() - started
    print(
        f"{runs}/{runs + broken} mixed-fleet rotations held every invariant; {targets} "
        f"targets, {unverified} unverified ({total:.0f} s)"
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
