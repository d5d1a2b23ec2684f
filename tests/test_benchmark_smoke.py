"""Regression smoke of the fleet benchmarks at a tiny size: they run end to end and count
right. Correctness facts only (every target rekeyed once, requests per target computed
from the simulators' ground truth); never speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.ledger.store import Ledger

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SMALL = ["--clusters", "3", "--svms", "4", "--job-seconds", "0.2", "--per-cluster", "2", "--tls"]

pytestmark = pytest.mark.slow


def run_benchmark(script: str, *extra: str, workdir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *SMALL, *extra, "--json",
         "--workdir", str(workdir)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("plan_first", [False, True])
def test_fleet_benchmark_over_tls_and_two_simulator_shards_counts_right(
    tmp_path: Path, plan_first: bool
) -> None:
    """fleet.py --tls --sim-processes 2: every target rekeyed exactly once, and the
    numbers it prints are computed from the merged ground truth of both shards; the run
    overlapped (`--yes`, one wave) or, with --plan-first, every cluster discovered first."""
    # --concurrency 4, under the clusters' limits (3 x 2): clusters take lanes, the run
    # overlaps discovery unless --plan-first
    extra = ["--concurrency", "4", *(["--plan-first"] if plan_first else [])]
    out = run_benchmark("fleet.py", "--sim-processes", "2", *extra, workdir=tmp_path)
    with Ledger.open(tmp_path / "state.db") as ledger:
        (run,) = ledger.list_runs()
    assert run.options["overlap_discovery"] is not plan_first
    if plan_first:
        assert out["phases"]["overlap_s"] == 0
    assert out["targets"] == 12
    assert out["sim_processes"] == 2
    assert len(out["sim_cpu_s"]) == 2
    assert out["exit_code"] == 0
    assert out["sim_rekeyed"] == 12
    assert out["sim_double_rekeys"] == 0
    assert 1 <= out["sim_peak_per_cluster"] <= 2  # --per-cluster 2, from the ground truth
    assert out["sim_peak_per_cluster"] <= out["sim_fleet_peak"] <= 3 * 2  # both shards
    assert out["report_totals"]["rekeyed"] == 12
    assert out["requests_per_target"] == round(sum(out["requests"].values()) / 12, 3)
    posts = sum(n for kind, n in out["requests"].items() if kind.startswith("POST "))
    assert posts == 12  # one accepted POST per target: no retries on a clean fleet
    assert out["requests"]["GET /api/cluster 200"] == 3  # discovery reached every shard
    # the read-back is batched: per cluster one collection GET at discovery, then batch
    # GETs (at most one a second per cluster under the failure budget: fewer than one per
    # target), no per-target GET, no key-store GET refused (9.14.1: none in the batch)
    collection_gets = out["requests"]["GET /api/security/aws-kms 200"]
    assert 3 + 3 <= collection_gets < 3 + 12
    assert out["requests"]["GET /api/security/key-stores 200"] == 3
    assert not [kind for kind in out["requests"] if kind.startswith("GET /api/security/aws-kms/")]
    # discovery also lists the Azure and GCP collections (the inventory names no providers)
    assert out["requests"]["GET /api/security/azure-key-vaults 200"] == 3
    assert out["requests"]["GET /api/security/gcp-kms 200"] == 3
    assert sum(out["requests"].values()) == 12 + 3 * 4 + collection_gets
    assert out["lower_bound_s"] == pytest.approx(0.6)  # ceil(12 / 4) x 0.2 s
    # wall_s is printed rounded to 0.01 s, efficiency from the unrounded wall time
    assert out["efficiency"] == pytest.approx(out["lower_bound_s"] / out["wall_s"], rel=0.01)
    for key in ("cpu_ms_per_target", "peak_rss_mib"):
        assert out[key] > 0
    # where the wall went: every phase was seen in the log, none negative, and together they
    # are the wall and the time discovery and the rotation overlapped (each rounded to 0.01 s)
    spent = out["phases"]
    names = {"startup_s", "discovery_s", "plan_s", "rotation_s", "reports_s", "overlap_s"}
    assert set(spent) == names
    assert all(seconds is not None and seconds >= 0 for seconds in spent.values()), spent
    overlap = spent.pop("overlap_s")
    assert sum(spent.values()) == pytest.approx(out["wall_s"] + overlap, abs=0.07)
    assert spent["rotation_s"] >= out["lower_bound_s"]  # no rotation beats its bound
    assert out["rotation_efficiency"] == pytest.approx(
        out["lower_bound_s"] / spent["rotation_s"], rel=0.02
    )
    # a slot's cycle: no answer before its job's length (0.2 s), and with 4 SVMs at
    # --per-cluster 2 every cluster hands its slots over once at least
    cycle = out["cycle"]
    for spread in cycle.values():
        assert spread is not None
        assert spread["p50"] <= spread["p90"] <= spread["p99"], cycle
    assert cycle["answer_late_ms"]["p50"] >= 0, cycle
    assert cycle["next_post_ms"]["p50"] >= 0, cycle


def test_peer_benchmark_rotates_the_same_fleet_with_the_official_client(tmp_path: Path) -> None:
    """peer.py: both tools rekey every target of their own identical fleet exactly once,
    and the ratios are computed from the two columns."""
    out = run_benchmark("peer.py", workdir=tmp_path)
    ours, peer = out["ontap_rekey"], out["peer"]
    for column in (ours, peer):
        assert column["exit_code"] == 0
        assert column["sim_rekeyed"] == 12
        assert column["sim_double_rekeys"] == 0
    assert json.loads(peer["script_output"])["rekeyed"] == 12
    ratio = out["peer_over_ontap_rekey"]["wall_s"]
    assert ratio == round(peer["wall_s"] / ours["wall_s"], 2)  # both from the rounded walls


def test_split_engines_benchmark_rotates_each_part_once_within_the_limits(
    tmp_path: Path,
) -> None:
    """split_engines.py --parts 1 2: one run over the fleet, then two at once over its
    halves (each its own ledger and half the global limit): every target rekeyed exactly
    once either way, the limits held, and the efficiency computed from the bound."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "split_engines.py"), *SMALL, "--concurrency", "4",
         "--parts", "1", "2", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    one, two = (json.loads(line) for line in done.stdout.strip().splitlines())
    assert (one["parts"], two["parts"]) == (1, 2)
    assert (one["concurrency_each"], two["concurrency_each"]) == (4, 2)
    assert one["exit_codes"] == [0] and two["exit_codes"] == [0, 0]
    assert len(two["each_wall_s"]) == 2 and max(two["each_wall_s"]) <= two["wall_s"]
    for out in (one, two):
        assert out["sim_rekeyed"] == 12
        assert out["sim_double_rekeys"] == 0
        assert 1 <= out["sim_peak_per_cluster"] <= 2  # --per-cluster 2
        assert out["sim_fleet_peak"] <= 4  # the parts' limits add up to --concurrency
        assert out["lower_bound_s"] == pytest.approx(0.6)  # ceil(12 / 4) x 0.2 s
        assert out["efficiency"] == pytest.approx(out["lower_bound_s"] / out["wall_s"], rel=0.01)
        assert out["cpu_ms_per_target"] > 0
    # each part's own ledger holds only its clusters
    with Ledger.open(next(tmp_path.glob("m1-parts2/inventory-part-1.db"))) as ledger:
        (run,) = ledger.list_runs()
        assert {row.key.cluster for row in ledger.targets(run.run_id)} == {"c002"}
