"""ontap-rekey against a script over NetApp's official client, on the same fleet, one run.

    .venv/bin/python benchmarks/peer.py --clusters 250 --svms 40 --tls [--sim-processes N]

Rotates the fleet twice, each time on a freshly started simulated fleet of the same shape
(`benchmarks/harness.py`; every rekey job lasts `--job-seconds`): first with
`ontap-rekey run` (as `benchmarks/fleet.py` measures it), then with
`benchmarks/peer_script.py`, an administrator's threaded script over the `netapp-ontap`
library (a thread per cluster, a pool of `--per-cluster` threads each,
`AwsKms(...).rekey_external(body=..., poll=True)`). Prints both side by side: wall,
efficiency against the same bound, CPU ms per target, requests per target, peak RSS, the
simulators' rekeys and double rekeys, and the ratio peer / ontap-rekey for each.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from fleet import add_fleet_args, measure
from harness import (
    flat_bound,
    ground_truth,
    raise_open_file_limit,
    request_counts,
    run_child,
    start_fleet,
)

SCRIPT = Path(__file__).parent / "peer_script.py"
COLUMNS = ("wall_s", "efficiency", "cpu_ms_per_target", "requests_per_target",
           "peak_rss_mib", "sim_rekeyed", "sim_double_rekeys", "exit_code")  # fmt: skip


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    add_fleet_args(p)
    p.add_argument("--concurrency", type=int, default=1000, help="ontap-rekey's global limit")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = p.parse_args()
    args.waves, args.return_timeout, args.profile = "100%", None, None  # what fleet.py reads
    return args


def measure_peer(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The administrator's script on a fresh fleet in `work`."""
    fleet, env = start_fleet(args, work)
    with fleet:
        assert fleet.inventory is not None
        if fleet.ca_bundle is not None:
            env["REQUESTS_CA_BUNDLE"] = str(fleet.ca_bundle)
        command = [sys.executable, str(SCRIPT), str(fleet.inventory),
                   "--per-cluster", str(args.per_cluster)]  # fmt: skip
        result = run_child(command, env, work / "peer.out", work / "peer.err")
        stats = fleet.stats()
    targets = args.clusters * args.svms
    bound = flat_bound(args.clusters, args.svms, args.per_cluster, args.job_seconds)
    truth = ground_truth(stats)
    return {
        "targets": targets,
        "exit_code": result["exit_code"],
        "wall_s": round(result["wall_s"], 2),
        "lower_bound_s": bound,
        "efficiency": round(bound / result["wall_s"], 3),
        "cpu_ms_per_target": round(1000 * result["cpu_s"] / targets, 3),
        "requests_per_target": round(sum(request_counts(stats).values()) / targets, 3),
        "peak_rss_mib": round(result["peak_rss_mib"], 1),
        "sim_rekeyed": truth["rekeyed"],
        "sim_double_rekeys": truth["double_rekeys"],
        "script_output": (work / "peer.out").read_text().strip(),
    }


def side_by_side(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    ratios = {
        key: round(peer[key] / ours[key], 2) if ours[key] else None
        for key in ("wall_s", "cpu_ms_per_target", "requests_per_target", "peak_rss_mib")
    }
    return {"ontap_rekey": ours, "peer": peer, "peer_over_ontap_rekey": ratios}


def main() -> int:
    args = parse_args()
    raise_open_file_limit()
    with tempfile.TemporaryDirectory(prefix="ontap-peer-") as tmp:
        root = args.workdir or Path(tmp)
        (root / "ontap-rekey").mkdir(parents=True, exist_ok=True)
        (root / "peer").mkdir(parents=True, exist_ok=True)
        ours = measure(args, root / "ontap-rekey")
        peer = measure_peer(args, root / "peer")
    out = side_by_side(ours, peer)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{'':22} {'ontap-rekey':>12} {'peer':>12} {'peer/ours':>10}")
        for key in COLUMNS:
            ratio = out["peer_over_ontap_rekey"].get(key)
            print(
                f"{key:22} {ours[key]!s:>12} {peer[key]!s:>12} {'' if ratio is None else ratio:>10}"
            )
        print(f"bound {ours['lower_bound_s']} s, {ours['targets']} targets, tls={args.tls}, "
              f"simulator processes {ours['sim_processes']}, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    return 0 if ours["exit_code"] == 0 and peer["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
