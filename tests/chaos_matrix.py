"""The chaos matrix (issue 12): the chaos fault mix, SIGKILL + resume at seeded moments,
for every cell of ONTAP version x job description x job expiry x busy answer x 201 body,
in both orders of a run: the plan first, and discovery overlapped with the rotation.

Each cell serves a fleet with `running_simulator` in this process (its ground truth is
read directly) and drives the rotation in worker *processes* (`python -m
tests.chaos_matrix worker ...`, the chaos run options of `tests/test_chaos.py`), killed
with SIGKILL at seeded moments and resumed until the run ends. Then, per cell: no target
rekeyed twice, `peak_concurrent_rekeys` within `--per-cluster` on every cluster, exactly
one terminal outcome per target, the report's totals equal to the ground truth, and the
`unverified` targets counted by reason. An overlapped cell (`order="overlapped"`) runs
under a global limit below its clusters' (`overlap_concurrency`: the clusters take lanes,
so each cluster's rows are committed and its targets start as it is discovered, and kills
land while later clusters are still being discovered), and checks that the run recorded
`overlap_discovery` as it ran. A helper module (the CI slice is in
`tests/test_chaos.py`, the whole matrix in `benchmarks/chaos.py --matrix`).

`mixed_runs` does the same on the mixed-provider fleet of issue 15 (AWS, Azure and GCP
round-robin over the SVMs, ONTAP 9.12.1 to 9.17.1 round-robin over the clusters): one
simulator and one ledger, `run --rekey external` killed and resumed to its end, then
`run --rekey internal` likewise, each checked per operation (`check_operation`). The CI
test is `tests/test_providers_chaos.py`, the scale run `benchmarks/chaos.py --mixed`.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import anyio

from orchestrator.core.options import RunOptions, overlaps_discovery
from orchestrator.core.providers import Operation
from orchestrator.core.selectors import Selection
from orchestrator.core.targets import Outcome, TargetState
from orchestrator.engine.discovery import ALL_SVMS
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.store import Ledger
from orchestrator.observe.reports import build_report
from orchestrator.simulator.fleet import FleetSpec, KeyManager
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import DEFAULT_JOB_DESCRIPTION, Scenario
from orchestrator.simulator.server import running_simulator

ROOT = Path(__file__).resolve().parent.parent
OTHER_WORDING = "Rekey the SVM key encryption key"
SWITCHES: dict[str, list[Any]] = {
    "version": ["9.12.1", "9.14.1", "9.16.1"],
    "job_description": [DEFAULT_JOB_DESCRIPTION, "", OTHER_WORDING],
    "job_expiry_s": [300.0, 5.0],
    "busy_rekey": ["conflict", "queue"],
    "rekey_finished_body": ["job", "job_uuid", "empty"],
}
WORKER_TIMEOUT_S = 600.0
MIXED_VERSIONS = ("9.12.1", "9.13.1", "9.14.1", "9.15.1", "9.16.1", "9.17.1")
MIXED_CLOUDS: tuple[KeyManager, ...] = ("aws", "azure", "gcp")
ORDERS = ("plan-first", "overlapped")  # `run --plan-first`, and `run --yes`'s overlap
# An overlapped cell's every request to c004, c014, ... late: the other clusters' targets
# finish while these are still being discovered, so the seeded kills often come then.
SLOW_DISCOVERY = {"kind": "latency", "cluster": "*4", "min_s": 0.1, "max_s": 0.2}


@dataclass(frozen=True)
class Cell:
    version: str
    job_description: str
    job_expiry_s: float
    busy_rekey: str
    rekey_finished_body: str
    order: str = "plan-first"  # one of ORDERS

    @property
    def overlapped(self) -> bool:
        return self.order == "overlapped"

    def label(self) -> str:
        wording = {DEFAULT_JOB_DESCRIPTION: "default", "": "empty"}.get(
            self.job_description, "other"
        )
        # a plan-first cell's label (and so its seeded moments) is the one it always had
        order = " order=overlapped" if self.overlapped else ""
        return (
            f"{self.version} desc={wording} expiry={self.job_expiry_s:g} "
            f"busy={self.busy_rekey} body={self.rekey_finished_body}{order}"
        )


def all_cells(orders: Sequence[str] = ORDERS) -> list[Cell]:
    """Every switch cell in each of `orders`, the plan-first ones first (so `--cells A:B`
    names the cells it always named)."""
    switches = list(itertools.product(*SWITCHES.values()))
    return [replace(Cell(*values), order=order) for order in orders for values in switches]


def ci_slice() -> list[Cell]:
    """Six cells: in each order, three that take every switch value at least once (the
    overlapped ones in other combinations than the plan-first ones)."""
    d = SWITCHES["job_description"]
    return [
        Cell("9.12.1", d[0], 300.0, "conflict", "job"),
        Cell("9.14.1", d[1], 5.0, "queue", "job_uuid"),
        Cell("9.16.1", d[2], 300.0, "queue", "empty"),
        Cell("9.12.1", d[1], 5.0, "queue", "empty", order="overlapped"),
        Cell("9.14.1", d[2], 300.0, "conflict", "job", order="overlapped"),
        Cell("9.16.1", d[0], 5.0, "queue", "job_uuid", order="overlapped"),
    ]


def overlap_concurrency(clusters: int, per_cluster: int) -> int:
    """An overlapped cell's `--concurrency`: a third of the clusters at a time (at least
    two), below the clusters' limits added up, so that the clusters take lanes and the run
    overlaps (`engine.runner.pool_lanes`) rather than planning first."""
    return per_cluster * max(2, clusters // 3)


@dataclass
class CellResult:
    cell: str
    targets: int
    seconds: float
    kills: int
    outcomes: dict[str, int]
    unverified: dict[str, int]
    doubles: int
    peak_rekeys: int
    fleet_peak_rekeys: int
    overlapped: bool  # the run's stored `overlap_discovery`: the order it actually ran in
    clusters_at_kills: list[int]  # per kill, the clusters with rows just before it


def cell_scenario(cell: Cell) -> Scenario:
    from tests.test_chaos import chaos_scenario

    base = chaos_scenario().model_dump(by_alias=True)
    base["options"] |= {
        "job_description": cell.job_description,
        "job_expiry_s": cell.job_expiry_s,
        "busy_rekey": cell.busy_rekey,
        "rekey_finished_body": cell.rekey_finished_body,
    }
    scenario = Scenario.model_validate(base)
    return _with_slow_discovery(scenario) if cell.overlapped else scenario


def _with_slow_discovery(scenario: Scenario) -> Scenario:
    """`scenario` with a tenth of the clusters slow (`SLOW_DISCOVERY`)."""
    document = scenario.model_dump(by_alias=True)
    document["faults"] = [*document["faults"], SLOW_DISCOVERY]
    return Scenario.model_validate(document)


@dataclass(frozen=True)
class _Order:
    """How the workers of one order run: `--concurrency`, their `run` arguments, and the
    targets the run will have at least (for the seeded moments; 0: as they always were)."""

    concurrency: int
    args: tuple[str, ...] = ()
    expected: int = 0

    @classmethod
    def of(cls, overlapped: bool, clusters: int, svms: int) -> _Order:
        from tests.test_chaos import CHAOS_OPTIONS, PER_CLUSTER

        if not overlapped:
            return cls(CHAOS_OPTIONS.concurrency)
        concurrency = overlap_concurrency(clusters, PER_CLUSTER)
        # the chaos mix leaves two clusters unreachable or locked out: one row each, done
        # at once, often the first rows an overlapped run commits
        healthy = max(0, clusters - 2) * svms
        return cls(concurrency, ("--overlap", "--concurrency", str(concurrency)), healthy)


def run_cell(
    cell: Cell, *, clusters: int, svms: int, kills: int, seed: int, workdir: Path
) -> CellResult:
    """One cell: serve, run, SIGKILL and resume, check; raises AssertionError."""
    from tests.test_chaos import PER_CLUSTER

    spec = FleetSpec.generate(clusters, svms, versions=[cell.version])
    rng = random.Random(f"{seed}:{cell.label()}")
    started = time.perf_counter()
    db = workdir / "ledger.db"
    order = _Order.of(cell.overlapped, clusters, svms)
    with running_simulator(spec, cell_scenario(cell), seed=seed) as sim:
        inventory = write_inventory(workdir / "fleet.yaml", spec, sim.urls, ca_bundle=None)
        clusters_at_kills: list[int] = []
        done_kills = _rotate_with_kills(
            inventory, db, rng, kills, workdir, order=order, clusters_at_kills=clusters_at_kills
        )
        truth = sim.fleet.stats()
    with Ledger.open(db) as ledger:
        (record,) = ledger.list_runs()
        rows = ledger.targets(record.run_id)
        report = build_report(record, rows, ledger.transitions(record.run_id))
    overlapped = RunOptions.from_json(record.options).overlap_discovery
    assert overlapped == cell.overlapped, (cell.label(), record.options)
    check_every_cluster(rows, spec, svms)
    doubles, unverified = check_cell(rows, report, truth, PER_CLUSTER, order.concurrency)
    return CellResult(
        cell=cell.label(),
        targets=len(rows),
        seconds=round(time.perf_counter() - started, 1),
        kills=done_kills,
        outcomes=dict(Counter(str(r.outcome) for r in rows)),
        unverified=unverified,
        doubles=doubles,
        peak_rekeys=max(c["peak_concurrent_rekeys"] for c in truth["clusters"].values()),
        fleet_peak_rekeys=truth["fleet"]["peak_concurrent_rekeys"],
        overlapped=overlapped,
        clusters_at_kills=clusters_at_kills,
    )


def _rotate_with_kills(
    inventory: Path,
    db: Path,
    rng: random.Random,
    kills: int,
    workdir: Path,
    *,
    rekey: Operation | None = None,
    earlier: frozenset[str] = frozenset(),
    in_flight: list[int] | None = None,
    order: _Order | None = None,
    clusters_at_kills: list[int] | None = None,
) -> int:
    """Run, SIGKILL at seeded moments, resume; the last resume runs to its end.

    `rekey`: the workers' `--rekey` (None: the options' default, external). `earlier`: the
    ledger's runs from before this rotation, which neither its run id nor its progress
    counts (a second rotation on the same ledger). `in_flight` (if given) gets, per kill,
    the rows between PENDING and DONE just before the SIGKILL, `clusters_at_kills` the
    clusters with rows. `order`: the plan-first order when None (a resume takes the run's
    stored options, as the CLI's)."""
    order = order or _Order.of(False, 0, 0)
    done = 0
    tag = "" if rekey is None else f"{rekey.value}-"
    rekey_args = [] if rekey is None else ["--rekey", rekey.value]
    for n in range(kills + 1):
        run_id = _run_id(db, earlier)
        args = ["run", *order.args, *rekey_args] if run_id is None else ["resume", run_id]
        log = (workdir / f"worker-{tag}{n}.out").open("wb")
        proc = _worker(args, inventory, db, log)
        if n == kills:
            _wait(proc, workdir)
            return done
        _wait_for_moment(db, proc, rng.uniform(0.05, 0.6), earlier, order.expected)
        if proc.poll() is not None:  # it finished before the kill
            _check_exit(proc, workdir)
            return done
        if in_flight is not None:
            in_flight.append(_in_flight(db, earlier))
        if clusters_at_kills is not None:
            clusters_at_kills.append(_clusters_with_rows(db, earlier))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=WORKER_TIMEOUT_S)
        done += 1
    return done


def _wait_for_moment(
    db: Path,
    proc: subprocess.Popen[bytes],
    share: float,
    earlier: frozenset[str] = frozenset(),
    expected: int = 0,
) -> None:
    """Until `share` of the targets left are done (a seeded moment mid-rotation), or the
    worker exits: a kill then catches rekeys in flight, not only discovery. `expected`:
    the targets the run will have at least (an overlapped run's rows grow as clusters are
    discovered; the skipped clusters' rows, done at once, come first)."""
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    before, _ = _progress(db, earlier)  # a resume: the share is of what is left
    while proc.poll() is None and time.monotonic() < deadline:
        done, total = _progress(db, earlier)
        total = max(total, expected) if total else 0
        if total and done - before >= share * (total - before):
            return
        time.sleep(0.05)


def _read_one(db: Path, sql: str, column: str, earlier: frozenset[str]) -> Any:
    """The first row of `sql` (read-only) with `column NOT IN earlier` added to its WHERE
    (or as one): the run in progress, not the earlier runs on the same ledger."""
    params = sorted(earlier)
    if params:
        joiner = " AND " if " WHERE " in sql else " WHERE "
        sql += f"{joiner}{column} NOT IN ({', '.join('?' * len(params))})"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5.0)
    try:
        return conn.execute(sql, params).fetchone()
    finally:
        conn.close()


def _progress(db: Path, earlier: frozenset[str] = frozenset()) -> tuple[int, int]:
    """(targets done, targets) of the ledger's run (not one of `earlier`); (0, 0) before
    it exists."""
    sql = "SELECT sum(state = 'done'), count(*) FROM targets"
    try:
        row = _read_one(db, sql, "run_id", earlier)
    except sqlite3.OperationalError:
        return 0, 0
    return int(row[0] or 0), int(row[1] or 0)


def _in_flight(db: Path, earlier: frozenset[str]) -> int:
    """Rows of the ledger's run (not one of `earlier`) neither pending nor done."""
    sql = "SELECT count(*) FROM targets WHERE state NOT IN ('pending', 'done')"
    return int(_read_one(db, sql, "run_id", earlier)[0])


def _clusters_with_rows(db: Path, earlier: frozenset[str]) -> int:
    """Clusters with rows in the ledger's run (not one of `earlier`): fewer than the
    selection's while an overlapped run is still discovering."""
    sql = "SELECT count(DISTINCT cluster) FROM targets"
    try:
        return int(_read_one(db, sql, "run_id", earlier)[0])
    except sqlite3.OperationalError:  # no ledger yet
        return 0


def _worker(args: list[str], inventory: Path, db: Path, log: Any) -> subprocess.Popen[bytes]:
    env = dict(os.environ, **{PASSWORD_ENV: "netapp-sim"})
    command = [sys.executable, "-m", "tests.chaos_matrix", "worker", *args]
    command += ["--inventory", str(inventory), "--db", str(db)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    try:
        proc.wait(timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"a worker did not finish in {WORKER_TIMEOUT_S} s") from None
    _check_exit(proc, workdir)


def _check_exit(proc: subprocess.Popen[bytes], workdir: Path) -> None:
    if proc.returncode not in (0, 3, 4):
        tail = "".join(p.read_text(errors="replace")[-1500:] for p in workdir.glob("worker-*"))
        raise AssertionError(f"worker exited {proc.returncode}:\n{tail}")


def _run_id(db: Path, earlier: frozenset[str] = frozenset()) -> str | None:
    """The ledger's run that is not one of `earlier`, if it exists yet."""
    if not db.exists():
        return None
    try:
        row = _read_one(db, "SELECT id FROM runs", "id", earlier)
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def check_every_cluster(rows: list[Any], spec: FleetSpec, svms: int) -> None:
    """Every cluster of the fleet has its rows: all its SVMs, or the one row of a cluster
    skipped at discovery (`engine.discovery.ALL_SVMS`). A resume that did not discover a
    cluster a kill left without rows would leave it with none, unseen by every other check."""
    by_cluster: dict[str, list[str]] = {}
    for row in rows:
        by_cluster.setdefault(row.key.cluster, []).append(row.key.svm)
    for cluster in spec.clusters:
        found = by_cluster.get(cluster.name, [])
        assert len(found) == svms or found == [ALL_SVMS], (cluster.name, sorted(found))


def check_cell(
    rows: list[Any],
    report: dict[str, Any],
    truth: dict[str, Any],
    per_cluster: int,
    concurrency: int,
) -> tuple[int, dict[str, int]]:
    """The cell's invariants; returns (double rekeys, unverified by reason)."""
    by_name = {f"{r.key.cluster}/{r.key.svm}": r for r in rows}
    assert len(by_name) == len(rows), "a target has two rows"
    for name, row in by_name.items():
        assert row.state is TargetState.DONE, (name, row.state)
        assert row.outcome in {o.value for o in Outcome}, (name, row.outcome)
    successes = {
        n: [r for r in s["rekeys"] if r["outcome"] == "success"] for n, s in truth["svms"].items()
    }
    doubles = {n: s for n, s in successes.items() if len(s) > 1}
    assert not doubles, f"double rekeys: {doubles}"
    for cluster, entry in truth["clusters"].items():
        assert entry["peak_concurrent_rekeys"] <= per_cluster, (cluster, entry)
    assert truth["fleet"]["peak_concurrent_rekeys"] <= concurrency, truth["fleet"]
    rekeyed = {n for n, r in by_name.items() if r.outcome == Outcome.REKEYED}
    for name in rekeyed:
        assert successes.get(name), f"{name}: rekeyed in the ledger, not on the cluster"
        assert truth["svms"][name]["key_id"] == by_name[name].key_id_after, name
    return len(doubles), _check_outcomes(rows, by_name, successes, report, "")


def _check_outcomes(
    rows: list[Any],
    by_name: dict[str, Any],
    successes: dict[str, list[Any]],
    report: dict[str, Any],
    what: str,
) -> dict[str, int]:
    """Every SVM rekeyed on the cluster is rekeyed or unverified in the ledger, and the
    report's totals are the rows'; returns the unverified targets by reason."""
    done = {n for n, s in successes.items() if s}
    for name in done:
        row = by_name.get(name)
        assert row is not None, f"{name}: rekeyed{what} on the cluster, not in the ledger"
        assert row.outcome in (Outcome.REKEYED, Outcome.UNVERIFIED), (name, row.outcome)
    totals = report["totals"]
    assert totals["targets"] == len(rows)
    counted = Counter(str(r.outcome) for r in rows)
    for outcome in Outcome:
        assert totals[outcome.value] == counted.get(outcome.value, 0), (outcome, totals)
    unconfirmed = [n for n in done if by_name[n].outcome == Outcome.UNVERIFIED]
    assert totals["rekeyed"] + len(unconfirmed) == len(done), (totals, len(done))
    return dict(Counter(str(r.reason) for r in rows if r.outcome == Outcome.UNVERIFIED))


# -- the mixed-provider fleet (issue 15) -----------------------------------------------------


@dataclass
class MixedResult:
    """One rotation of the mixed fleet (one operation), in the shape of `CellResult`."""

    cell: str
    operation: str
    targets: int
    seconds: float
    kills: int
    in_flight_at_kills: list[int]  # per kill, rows between PENDING and DONE just before it
    clusters_at_kills: list[int]  # per kill, the clusters with rows just before it
    outcomes: dict[str, int]
    unverified: dict[str, int]
    doubles: int  # SVMs with two successful rekeys of this operation
    peak_rekeys: int  # the largest per-cluster peak so far (the ground truth's, cumulative)
    fleet_peak_rekeys: int
    providers: dict[str, int]  # the run's targets per provider


def mixed_spec(clusters: int, svms: int) -> FleetSpec:
    """ONTAP 9.12.1..9.17.1 round-robin over the clusters, AWS/Azure/GCP over the SVMs."""
    return FleetSpec.generate(clusters, svms, versions=MIXED_VERSIONS, key_managers=MIXED_CLOUDS)


def mixed_runs(
    *,
    clusters: int,
    svms: int,
    kills: int,
    seed: int,
    workdir: Path,
    operations: Sequence[Operation] = (Operation.EXTERNAL, Operation.INTERNAL),
    overlapped: bool = False,
) -> Iterator[MixedResult]:
    """Serve the mixed fleet once; per operation in order: `run --rekey OP` in worker
    processes, SIGKILL at `kills` seeded moments and resume to the end, then check the
    invariants for that operation (`check_operation`: raises AssertionError) and yield
    its result. The rotations share the fleet and the ledger, as an administrator's
    `run --rekey external` then `run --rekey internal` would. `overlapped`: each run's
    discovery overlapped with its rotation (`overlap_concurrency`), checked as recorded."""
    from tests.test_chaos import PER_CLUSTER, chaos_scenario

    order = _Order.of(overlapped, clusters, svms)
    spec = mixed_spec(clusters, svms)
    db = workdir / "ledger.db"
    # the chaos mix at the simulator's default switches
    scenario = _with_slow_discovery(chaos_scenario()) if overlapped else chaos_scenario()
    with running_simulator(spec, scenario, seed=seed) as sim:
        inventory = write_inventory(workdir / "fleet.yaml", spec, sim.urls, ca_bundle=None)
        for operation in operations:
            label = f"mixed {MIXED_VERSIONS[0]}..{MIXED_VERSIONS[-1]} rekey={operation.value}"
            label += " order=overlapped" if overlapped else ""
            rng = random.Random(f"{seed}:{label}")
            started = time.perf_counter()
            before = sim.fleet.stats()
            earlier = _run_ids(db)
            in_flight: list[int] = []
            clusters_at_kills: list[int] = []
            done_kills = _rotate_with_kills(
                inventory,
                db,
                rng,
                kills,
                workdir,
                rekey=operation,
                earlier=earlier,
                in_flight=in_flight,
                order=order,
                clusters_at_kills=clusters_at_kills,
            )
            truth = sim.fleet.stats()
            with Ledger.open(db) as ledger:
                (record,) = [r for r in ledger.list_runs() if r.run_id not in earlier]
                rows = ledger.targets(record.run_id)
                report = build_report(record, rows, ledger.transitions(record.run_id))
            stored = RunOptions.from_json(record.options).overlap_discovery
            assert stored == overlapped, (label, record.options)
            check_every_cluster(rows, spec, svms)
            doubles, unverified = check_operation(
                rows,
                report,
                before,
                truth,
                operation,
                per_cluster=PER_CLUSTER,
                concurrency=order.concurrency,
            )
            yield MixedResult(
                cell=label,
                operation=operation.value,
                targets=len(rows),
                seconds=round(time.perf_counter() - started, 1),
                kills=done_kills,
                in_flight_at_kills=in_flight,
                clusters_at_kills=clusters_at_kills,
                outcomes=dict(Counter(str(r.outcome) for r in rows)),
                unverified=unverified,
                doubles=doubles,
                peak_rekeys=max(c["peak_concurrent_rekeys"] for c in truth["clusters"].values()),
                fleet_peak_rekeys=truth["fleet"]["peak_concurrent_rekeys"],
                providers=dict(Counter(str(r.provider) for r in rows if r.provider)),
            )


def _run_ids(db: Path) -> frozenset[str]:
    if not db.exists():
        return frozenset()
    with Ledger.open(db) as ledger:
        return frozenset(r.run_id for r in ledger.list_runs())


def check_operation(
    rows: list[Any],
    report: dict[str, Any],
    before: dict[str, Any],
    truth: dict[str, Any],
    operation: Operation,
    *,
    per_cluster: int,
    concurrency: int,
) -> tuple[int, dict[str, int]]:
    """The invariants of one rotation (`operation`) of a mixed-provider fleet, from the
    ground truth `before` and after it; returns (double rekeys, unverified by reason).

    The ground truth's rekey records carry `provider` and `operation`: a double is two
    successful rekeys of one SVM for this operation (an SVM has one of each after both
    rotations); a rekey of the other operation during this rotation is a wrong endpoint."""
    op = operation.value
    by_name = {f"{r.key.cluster}/{r.key.svm}": r for r in rows}
    assert len(by_name) == len(rows), "a target has two rows"
    svms = truth["svms"]
    for name, row in by_name.items():
        assert row.state is TargetState.DONE, (name, row.state)
        assert row.outcome in {o.value for o in Outcome}, (name, row.outcome)
        assert row.operation_kind is operation, (name, row.operation)
        if name in svms:  # not the cluster-scope row of a cluster skipped at discovery
            assert row.provider == svms[name]["provider"], (name, row.provider)

    def records(stats: dict[str, Any], name: str, kind: str) -> list[dict[str, Any]]:
        return [r for r in stats["svms"][name]["rekeys"] if r["operation"] == kind]

    other = "internal" if op == "external" else "external"
    for name in svms:
        assert records(truth, name, other) == records(before, name, other), (
            f"{name}: a rekey-{other} during the {op} rotation"
        )
    successes = {n: [r for r in records(truth, n, op) if r["outcome"] == "success"] for n in svms}
    doubles = {n: s for n, s in successes.items() if len(s) > 1}
    assert not doubles, f"double {op} rekeys: {doubles}"
    for name, found in successes.items():  # accepted at the SVM's own collection
        assert all(r["provider"] == svms[name]["provider"] for r in found), (name, found)
    for cluster, entry in truth["clusters"].items():
        assert entry["peak_concurrent_rekeys"] <= per_cluster, (cluster, entry)
    assert truth["fleet"]["peak_concurrent_rekeys"] <= concurrency, truth["fleet"]
    for name in svms:
        if operation is Operation.INTERNAL:  # a new SVM KEK; the cloud key stays
            was, now = before["svms"][name], svms[name]
            assert (now["key_id"], now["key_version"]) == (was["key_id"], was["key_version"]), (
                f"{name}: an internal rekey changed the key id or version"
            )
    for name, row in by_name.items():
        if row.outcome != Outcome.REKEYED:
            continue
        assert len(successes.get(name, [])) == 1, f"{name}: rekeyed in the ledger, not {op}"
        assert successes[name][0]["provider"] == row.provider, (name, row.provider)
        assert svms[name]["key_id"] == row.key_id_after, (name, row.key_id_after)
    return len(doubles), _check_outcomes(rows, by_name, successes, report, f" ({op})")


# -- the worker process ---------------------------------------------------------------------


def _worker_main(argv: list[str]) -> int:
    """`worker run [--rekey OP] [--concurrency N] [--overlap] --inventory P --db D`, or
    `worker resume RUN_ID --inventory P --db D`: one rotation with the chaos options; a
    resume with the run's stored options, as the CLI's `resume`."""
    from orchestrator.config.loader import load_inventory
    from orchestrator.engine.runner import RunRequest, Wiring, execute_run, resume_run
    from orchestrator.observe.logging import configure_logging

    inventory = Path(argv[argv.index("--inventory") + 1])
    db = Path(argv[argv.index("--db") + 1])
    configure_logging(log_format="json", stream=open(os.devnull, "w"), stream_level="error")  # noqa: SIM115
    loaded = load_inventory(inventory)
    with Ledger.open(db) as ledger:
        wiring = Wiring(AsyncLedger(ledger), handle_signals=False)
        if argv[0] == "run":
            request = RunRequest(loaded, Selection(), _run_options(argv))
            result = anyio.run(execute_run, request, wiring)
        else:
            record = ledger.get_run(argv[1])
            request = RunRequest(loaded, Selection(), RunOptions.from_json(record.options))
            result = anyio.run(resume_run, record, request, wiring)
    return 0 if result is None else int(result.exit_code)


def _run_options(argv: list[str]) -> RunOptions:
    """The chaos options with the worker's flags, overlapping as `run --yes` decides."""
    from tests.test_chaos import CHAOS_OPTIONS, REQUEST_TIMEOUT_S

    # the simulator and the other cells share two cores: generous read timeouts
    options = replace(CHAOS_OPTIONS, request_timeout_s=REQUEST_TIMEOUT_S * 5, return_timeout=1)
    if "--rekey" in argv:  # the CLI's `--rekey external|internal`
        options = replace(options, rekey=Operation(argv[argv.index("--rekey") + 1]))
    if "--concurrency" in argv:
        options = replace(options, concurrency=int(argv[argv.index("--concurrency") + 1]))
    overlap = "--overlap" in argv and overlaps_discovery(options, Selection(), confirmed=True)
    return replace(options, overlap_discovery=overlap)


def result_line(result: CellResult | MixedResult) -> str:
    return json.dumps(asdict(result), sort_keys=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.exit(_worker_main(sys.argv[2:]))
