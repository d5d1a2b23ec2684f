"""The ledger: every run, target and transition, in one SQLite file (WAL mode).

Synchronous and thread-safe (one connection behind a lock); the engine reaches it through
`AsyncLedger`, which batches writes off the event loop. Writes are explicit
`BEGIN IMMEDIATE ... COMMIT` transactions: when a write method returns, the change is
committed and survives a kill of this process (see `_configure` for power loss).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from itertools import groupby
from operator import is_, itemgetter
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from orchestrator.core.providers import Operation, Provider
from orchestrator.core.settling import Calibration, CalibrationKind
from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.errors import StateError
from orchestrator.ledger.lock import LockHolder, RunLock
from orchestrator.ledger.records import (
    PlanEstimate,
    RunMode,
    RunRecord,
    RunStatus,
    TargetRow,
    Transition,
)
from orchestrator.ledger.schema import SCHEMA_VERSION, TARGET_COLUMNS, migrate, schema_version

DEFAULT_BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process's write transaction (e.g. two `history`s)."""

RECENT_RUNS_HINT = 5
"""How many recent run ids an "unknown run" error suggests."""

WriteItem = tuple[TargetRow, Transition | None]
"""One unit of `Ledger.write`: a target row to upsert and, optionally, its transition."""


@dataclass(frozen=True)
class Rotation:
    """The last confirmed rotation of a target: which run, when, to which key id."""

    run_id: str
    at: float  # unix time the target finished
    key_id: str | None
    provider: str = Provider.AWS.value  # the target's key manager then
    operation: Operation = Operation.EXTERNAL


_RUN_COLUMNS = (
    "id, mode, reason, inventory_path, inventory_sha256, options, selection, operator, "
    "started_at, ended_at, status, tls_verify_disabled, estimate"
)
_TARGET_VALUES = f"INSERT INTO targets ({', '.join(TARGET_COLUMNS)})"
_UPSERT_TARGET_TAIL = " ON CONFLICT (run_id, cluster, svm) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in TARGET_COLUMNS[3:]
)
_TRANSITION_VALUES = (
    "INSERT INTO transitions (run_id, cluster, svm, at, state, attempt, event, detail)"
)
_CALIBRATION_COLUMNS = (
    "cluster, provider, operation, description, names_svm, job_uuid, config_uuid, "
    "confirmed, unstable, record_lifetime_s, run_id, updated_at"
)
_UPSERT_CALIBRATION = (
    f"INSERT INTO job_calibrations ({_CALIBRATION_COLUMNS}) "
    f"VALUES ({', '.join('?' * 12)}) "
    "ON CONFLICT (cluster, provider, operation) DO UPDATE SET "
    "confirmed = MAX(confirmed, excluded.confirmed), "
    "unstable = MAX(unstable, excluded.unstable), "
    "record_lifetime_s = MAX(record_lifetime_s, excluded.record_lifetime_s), "
    "run_id = excluded.run_id, updated_at = excluded.updated_at"
)
_IN_FLIGHT_STATES = tuple(
    state.value
    for state in (
        TargetState.INTENT,
        TargetState.SUBMITTED,
        TargetState.UNCERTAIN,
        TargetState.VERIFYING,
    )
)
# Bound parameters per statement (SQLite's limit is 32,766 since 3.32, 999 before).
_MAX_PARAMS = 32_000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 990


class Ledger:
    """One ledger file. Open with `Ledger.open(path)`; close with `close()` or `with`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        """Use `Ledger.open`; this takes an already configured and migrated connection."""
        self.path = path
        self._conn = conn
        self._mutex = threading.RLock()  # one connection, shared by the caller's threads
        self._lock = RunLock(path.with_name(path.name + ".lock"))

    # -- lifecycle ------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Ledger:
        """Open (creating and migrating when needed) the ledger at `path`.

        The folder must exist: a typo in `--state` should not quietly start a new ledger
        somewhere unexpected; with `create=False` the file must exist too (a reader never
        makes one). Raises StateError for anything that is not a usable ledger.
        """
        path = Path(path)
        if not create:
            require_ledger_file(path)
        if not path.parent.is_dir():
            raise StateError(f"cannot open the ledger {path}: folder {path.parent} does not exist")
        if path.is_dir():
            raise StateError(f"cannot open the ledger {path}: it is a folder")
        try:
            conn = sqlite3.connect(
                path, timeout=DEFAULT_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:  # e.g. a folder this user cannot write
            raise StateError(f"cannot open the ledger {path}: {exc}{_ACCESS_HINT}") from exc
        try:
            _configure(conn, path)
            check_integrity(conn, path)
            migrate(conn, str(path))
        except sqlite3.OperationalError as exc:  # read-only, locked, I/O: the file may be fine
            conn.close()
            raise StateError(f"cannot open the ledger {path}: {exc}{_ACCESS_HINT}") from exc
        except sqlite3.DatabaseError as exc:  # not a database, or damaged
            conn.close()
            raise StateError(f"cannot open the ledger {path}: {exc}{damaged_hint(path)}") from exc
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    @classmethod
    def open_readonly(cls, path: Path) -> Ledger:
        """The ledger at `path`, opened read-only: nothing is created, migrated or written.

        Raises StateError, one line, for a missing file, an empty file, a file that is not
        SQLite or not a ledger, or a ledger from a newer release.
        """
        path = Path(path)
        require_ledger_file(path)
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        try:
            conn.row_factory = sqlite3.Row
            check_integrity(conn, path)
            _check_readable(conn, path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StateError(f"cannot open the ledger {path}: {exc}{damaged_hint(path)}") from None
        except BaseException:
            conn.close()
            raise
        return cls(path, conn)

    def close(self) -> None:
        """Release the run lock (if held) and close the connection. Idempotent."""
        with self._mutex:
            self._lock.release()
            self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- runs -----------------------------------------------------------------------------

    def new_run_id(self) -> str:
        """A fresh run id: UTC time then 4 hex digits, sortable and readable."""
        while True:
            run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
            if not self._select("SELECT 1 FROM runs WHERE id = ?", (run_id,)):
                return run_id

    def create_run(self, run: RunRecord) -> None:
        """Record a new run; StateError if the id is taken."""
        try:
            with self._transaction() as conn:
                conn.execute(
                    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES ({', '.join('?' * 13)})",
                    _run_params(run),
                )
        except sqlite3.IntegrityError:
            raise StateError(f"run {run.run_id} already exists in {self.path}") from None

    def set_run_status(self, run_id: str, status: RunStatus, ended_at: float | None = None) -> None:
        """Set a run's status; a non-ACTIVE status without `ended_at` ends it now.

        ACTIVE (a resume) clears the end time unless one is given.
        """
        if ended_at is None and status is not RunStatus.ACTIVE:
            ended_at = time.time()
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET status = ?, ended_at = ? WHERE id = ?",
                (status.value, ended_at, run_id),
            )
        if cursor.rowcount == 0:
            raise self._unknown_run(run_id)

    def get_run(self, run_id: str) -> RunRecord:
        """The run `run_id`; StateError naming recent runs if there is none."""
        rows = self._select(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise self._unknown_run(run_id)
        return _run_from(rows[0])

    def list_runs(self, limit: int | None = None) -> list[RunRecord]:
        """Runs, newest first (at most `limit`)."""
        rows = self._select(
            f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC LIMIT ?",
            (-1 if limit is None else limit,),
        )
        return [_run_from(row) for row in rows]

    def _unknown_run(self, run_id: str) -> StateError:
        recent = [run.run_id for run in self.list_runs(RECENT_RUNS_HINT)]
        hint = f"recent runs: {', '.join(recent)}" if recent else "the ledger has no runs yet"
        return StateError(f"no run {run_id} in {self.path} ({hint})")

    # -- run exclusivity --------------------------------------------------------------------

    def acquire(self, run_id: str) -> None:
        """Hold the ledger's run lock for `run_id` until `release()` (or process death).

        Raises StateError naming the run that holds it. Re-acquiring the same run is a no-op.
        """
        with self._mutex:
            self._lock.acquire(run_id)

    def release(self) -> None:
        """Release the run lock (a no-op when not held)."""
        with self._mutex:
            self._lock.release()

    def lock_holder(self) -> LockHolder | None:
        """Who holds the run lock now (any process, this one included), or None."""
        with self._mutex:
            return self._lock.holder()

    def running_run(self) -> RunRecord | None:
        """The ACTIVE run whose lock is held by a live process, if any.

        An ACTIVE run that is not this one crashed, and `resume` may continue it.
        """
        holder = self.lock_holder()
        if holder is None:
            return None
        rows = self._select(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ? AND status = ?",
            (holder.run_id, RunStatus.ACTIVE.value),
        )
        return _run_from(rows[0]) if rows else None

    # -- targets and transitions ----------------------------------------------------------

    def add_targets(self, rows: Sequence[TargetRow]) -> None:
        """Record targets in one transaction; a target already recorded keeps its row.

        Never overwriting makes it safe for `resume` to add what discovery finds again;
        `write` is the way to change a recorded row.
        """
        params = [_target_params(row) for row in rows]
        with self._transaction() as conn:
            for statement, chunk in _inserts_without_nulls(params):
                conn.executemany(statement, chunk)

    def write(
        self,
        batch: Sequence[WriteItem],
        calibrations: Sequence[tuple[Calibration, str | None]] = (),
    ) -> None:
        """Upsert every row and append every transition, all in ONE transaction; with
        `calibrations` ((calibration, run_id) pairs), those are saved in it too.

        Rows apply in order (the last row of a target wins). A transition needs its target
        row, in this batch or already recorded: a dangling one fails the whole batch.
        """
        latest = {(row.run_id, row.key): row for row, _ in batch}  # the last row wins
        rows = [_target_params(row) for row in latest.values()]
        steps = [_transition_params(step) for _, step in batch if step is not None]
        with self._transaction() as conn:
            _execute_rows(conn, _TARGET_VALUES, _UPSERT_TARGET_TAIL, rows)
            _execute_rows(conn, _TRANSITION_VALUES, "", steps)
            for calibration, run_id in calibrations:
                conn.execute(_UPSERT_CALIBRATION, _calibration_params(calibration, run_id))

    # -- job calibrations -------------------------------------------------------------------

    def save_calibration(self, calibration: Calibration, run_id: str | None = None) -> None:
        """Record a cluster's calibration; what it learnt only grows.

        The first template and calibrating job stay; `confirmed`, `unstable` and the
        measured record lifetime merge monotonically (a lifetime is a lower bound).
        """
        with self._transaction() as conn:
            conn.execute(_UPSERT_CALIBRATION, _calibration_params(calibration, run_id))

    def calibrations(self) -> dict[str, dict[CalibrationKind, Calibration]]:
        """Every recorded calibration, by cluster name, then (provider, operation)."""
        rows = self._select(f"SELECT {_CALIBRATION_COLUMNS} FROM job_calibrations", ())
        found: dict[str, dict[CalibrationKind, Calibration]] = {}
        for row in rows:
            calibration = _calibration_from(row)
            found.setdefault(calibration.cluster, {})[calibration.kind] = calibration
        return found

    def unfinished_in_flight(self) -> dict[str, list[TargetKey]]:
        """Runs not finished (crashed, interrupted, aborted) with targets in flight: by run id,
        the keys of those targets (something of that run may still run on the cluster)."""
        rows = self._select(
            "SELECT t.run_id, t.cluster, t.svm FROM targets AS t JOIN runs AS r "
            "ON r.id = t.run_id WHERE r.status != ? AND r.mode != ? AND t.state IN (?, ?, ?, ?) "
            "ORDER BY r.started_at, t.cluster, t.svm",
            (RunStatus.FINISHED.value, RunMode.PLAN.value, *_IN_FLIGHT_STATES),
        )
        found: dict[str, list[TargetKey]] = {}
        for row in rows:
            found.setdefault(row["run_id"], []).append(TargetKey(row["cluster"], row["svm"]))
        return found

    def recorded_jobs(self, since: float, facts_key: str) -> dict[TargetKey, set[str]]:
        """By target, the job uuids that runs (not plans) ended at or after `since`, or not
        ended, recorded: each row's `job_uuid` and the list under `facts_key` in its facts."""
        rows = self._select(
            "SELECT t.cluster, t.svm, t.job_uuid, json_extract(t.facts, '$.' || ?) AS jobs "
            "FROM targets AS t JOIN runs AS r ON r.id = t.run_id "
            "WHERE r.mode != ? AND (r.ended_at IS NULL OR r.ended_at >= ?)",
            (facts_key, RunMode.PLAN.value, since),
        )
        found: dict[TargetKey, set[str]] = {}
        for row in rows:
            jobs = set(json.loads(row["jobs"])) if row["jobs"] else set()
            jobs |= {row["job_uuid"]} if row["job_uuid"] else set()
            if jobs:
                found.setdefault(TargetKey(row["cluster"], row["svm"]), set()).update(jobs)
        return found

    def targets(self, run_id: str) -> list[TargetRow]:
        """Every target row of a run, ordered by cluster then SVM."""
        rows = self._select(
            f"SELECT {', '.join(TARGET_COLUMNS)} FROM targets WHERE run_id = ? "
            "ORDER BY cluster, svm",
            (run_id,),
        )
        return [_target_from(row) for row in rows]

    def transitions(self, run_id: str) -> list[Transition]:
        """Every transition of a run, in the order they were committed."""
        rows = self._select(
            "SELECT run_id, cluster, svm, at, state, attempt, event, detail FROM transitions "
            "WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
        return [_transition_from(row) for row in rows]

    def seen_targets(self) -> set[TargetKey]:
        """Every target any run (plan runs included) ever recorded."""
        rows = self._select("SELECT DISTINCT cluster, svm FROM targets", ())
        return {TargetKey(row["cluster"], row["svm"]) for row in rows}

    def last_rotations(
        self,
        where: Callable[[TargetKey], bool] | None = None,
        operation: Operation = Operation.EXTERNAL,
    ) -> dict[TargetKey, Rotation]:
        """Per target, the last `rekeyed` outcome of `operation` across all runs (plan runs
        excluded; rows of earlier releases are AWS rekey-external).

        `where` keeps only the targets it accepts (e.g. a selection).
        """
        rows = self._select(
            "SELECT t.cluster, t.svm, t.run_id, COALESCE(t.finished_at, r.started_at) AS at, "
            "COALESCE(t.key_id_after, t.key_id_intended) AS key_id, "
            "COALESCE(t.provider, 'aws') AS provider "
            "FROM targets AS t JOIN runs AS r ON r.id = t.run_id "
            "WHERE t.outcome = 'rekeyed' AND r.mode != ? "
            "AND COALESCE(t.operation, 'external') = ? ORDER BY at, t.run_id",
            (RunMode.PLAN.value, operation.value),
        )
        latest: dict[TargetKey, Rotation] = {}
        for row in rows:  # ascending time: the last one seen per target wins
            key = TargetKey(row["cluster"], row["svm"])
            if where is None or where(key):
                latest[key] = Rotation(
                    row["run_id"], float(row["at"]), row["key_id"], row["provider"], operation
                )
        return latest

    def recorded_cluster_uuids(self) -> dict[str, str]:
        """Per cluster (inventory entry) name, the uuid it reported in its latest run or plan."""
        rows = self._select(
            "SELECT t.cluster, t.cluster_uuid FROM targets AS t JOIN runs AS r ON r.id = t.run_id "
            "WHERE t.cluster_uuid IS NOT NULL ORDER BY r.started_at, r.id",
            (),
        )
        return {row["cluster"]: row["cluster_uuid"] for row in rows}  # the latest run wins

    def read_pages(
        self, sql: str, params: Sequence[Any], size: int = 2000
    ) -> Iterator[list[sqlite3.Row]]:
        """The rows of a read-only query, `size` at a time (a reader that turns each page
        into its own objects never holds every raw row at once; `ledger/report_rows.py`)."""
        with self._mutex:
            cursor = self._conn.execute(sql, params)
        while True:
            with self._mutex:
                page = cursor.fetchmany(size)
            if not page:
                return
            yield page

    # -- plumbing ---------------------------------------------------------------------------

    def _select(self, sql: str, params: Sequence[Any]) -> list[sqlite3.Row]:
        with self._mutex:
            return self._conn.execute(sql, params).fetchall()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed on exit; IMMEDIATE so it never fails to upgrade."""
        with self._mutex:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise


_ACCESS_HINT = " (check that this user can write the file and its folder)"


def require_ledger_file(path: Path) -> None:
    """The one "does the ledger exist" rule of the commands that only read it."""
    if not path.is_file():
        raise StateError(f"no ledger at {path}: pass --state, or run `ontap-rekey plan` first")
    if path.stat().st_size == 0:
        raise StateError(f"{path} is an empty file, not an ontap-rekey ledger (pass --state)")


def _check_readable(conn: sqlite3.Connection, path: Path) -> None:
    version = schema_version(conn)
    if version == 0:
        raise StateError(f"{path} is not an ontap-rekey ledger (pass --state)")
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{path} has ledger schema v{version}, newer than this ontap-rekey "
            f"(v{SCHEMA_VERSION}): upgrade ontap-rekey"
        )


def damaged_hint(path: Path) -> str:
    return (
        f" (restore {path.name} from a backup, or pass --state NEW.db to start a new "
        f"ledger; `sqlite3 {path.name} .recover` salvages what it can)"
    )


def check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """A ledger damaged inside (a torn copy, a bad disk) is refused before anything reads
    or writes it: SQLite itself finds a damaged page only when a query touches it, which
    would be mid-run. `quick_check` reads every page once (0.3 s for a 200 MB ledger)."""
    problems = [str(row[0]) for row in conn.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        # one line: SQLite lists every bad cell, under a "*** in database main ***" header
        lines = [line for text in problems for line in text.splitlines()]
        first = next((line for line in lines if not line.startswith("***")), lines[0])
        raise StateError(
            f"cannot open the ledger {path}: it is damaged: {first}{damaged_hint(path)}"
        )


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    conn.row_factory = sqlite3.Row
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StateError(f"cannot use WAL mode for the ledger {path} (a network filesystem?)")
    # synchronous = FULL: fsync the WAL at every commit.
    # In WAL mode NORMAL already survives any *process* crash (SIGKILL, OOM): a committed
    # transaction sits in the OS page cache and the kernel writes it out. Only power loss
    # or a kernel panic (a hypervisor resetting the jump host) can roll it back. We keep that
    # in scope: the intent committed before a POST must still be there after such a reset,
    # or `resume` would take the target for untouched and rekey it a second time. The
    # cost is one fsync per transaction, which group commit (AsyncLedger) shares among all
    # the writes queued meanwhile; benchmarks/ledger_writes.py measures it.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


# default=str: an odd value (a Path, a datetime) must not crash a run mid-flight. One
# encoder for every call: `json.dumps` with any option builds a new JSONEncoder per call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=str)


def _c_encoder() -> Callable[[Any, int], Sequence[str]] | None:
    """The C encoder `_ENCODER.encode` builds again on every call (~2 us of a row's
    facts or evidence), built once, with `_ENCODER`'s options. No circular-reference
    bookkeeping (`markers=None`; one markers dict would be shared by the threads that
    write): what is stored is plain JSON values built by the engine, never a cycle."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator in this interpreter
        return None
    enc = _ENCODER
    as_text = (
        json.encoder.encode_basestring_ascii if enc.ensure_ascii else json.encoder.encode_basestring
    )
    return cast(
        Callable[[Any, int], Sequence[str]],
        make(None, enc.default, as_text, None, enc.key_separator, enc.item_separator,
             enc.sort_keys, enc.skipkeys, enc.allow_nan),
    )  # fmt: skip


_ENCODE = _c_encoder()


def _dumps(value: dict[str, Any]) -> str:
    """`_ENCODER.encode(value)`: compact JSON with sorted keys."""
    if not value:
        return "{}"  # most evidence and facts before the first POST, and many details
    if _ENCODE is None:
        return _ENCODER.encode(value)
    return "".join(_ENCODE(value, 0))


def _run_params(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.run_id,
        run.mode.value,
        run.reason,
        run.inventory_path,
        run.inventory_sha256,
        _dumps(run.options),
        _dumps(run.selection),
        run.operator,
        run.started_at,
        run.ended_at,
        run.status.value,
        json.dumps(list(run.tls_verify_disabled)),
        _dumps(run.estimate.to_json()) if run.estimate is not None else None,
    )


def _run_from(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        run_id=row["id"],
        mode=RunMode(row["mode"]),
        reason=row["reason"],
        inventory_path=row["inventory_path"],
        inventory_sha256=row["inventory_sha256"],
        options=json.loads(row["options"]),
        selection=json.loads(row["selection"]),
        operator=row["operator"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        status=RunStatus(row["status"]),
        tls_verify_disabled=tuple(json.loads(row["tls_verify_disabled"])),
        estimate=PlanEstimate.from_json(json.loads(row["estimate"])) if row["estimate"] else None,
    )


def _execute_rows(
    conn: sqlite3.Connection, head: str, tail: str, rows: Sequence[tuple[Any, ...]]
) -> None:
    """`head VALUES (...), (...) tail` in as few statements as the parameter limit allows.

    One multi-row statement instead of `executemany`: the sqlite3 module releases the GIL
    around every step, and a writer thread that must win the GIL back once per row from
    a busy event loop took ~50x longer per transaction (measured: 774 ms vs 15 ms for 120
    rows under a busy thread).

    Each statement holds a power of two of rows (13 rows: 8, 4, 1, in order): the sqlite3
    module caches every distinct statement compiled (128), and a statement of n rows is a
    program of ~2.7 KB per row, so one size per batch size held up to 39 MB of SQLite's
    memory at 10,000 targets and compiled most batches anew; now at most 11 sizes per
    table, compiled once.
    """
    if not rows:
        return
    width = len(rows[0])
    per_statement = max(1, _MAX_PARAMS // width)
    placeholder = "(" + ", ".join("?" * width) + ")"
    start = 0
    while start < len(rows):
        size = 1 << (min(len(rows) - start, per_statement).bit_length() - 1)
        chunk = rows[start : start + size]
        start += size
        values = ", ".join([placeholder] * size)
        conn.execute(f"{head} VALUES {values}{tail}", [v for row in chunk for v in row])


_IN_COLUMN_ORDER = itemgetter(*TARGET_COLUMNS)
_NULLS = (None,) * len(TARGET_COLUMNS)
_WITH_DEFAULT = frozenset({"evidence"})  # a `targets` column whose DEFAULT is not NULL: never
# omitted (tests/test_ledger_add_targets.py holds this set equal to the schema's)


def _inserts_without_nulls(
    params: Sequence[tuple[Any, ...]],
) -> Iterator[tuple[str, Iterator[tuple[Any, ...]]]]:
    """`INSERT OR IGNORE` statements for `params` (each a row's values in column order)
    naming only the row's non-NULL columns, with their rows' values; consecutive rows with
    the same columns share one statement, in the order given (so the same rowids).

    An omitted column is stored NULL, as a bound None would be. Why: the sqlite3 module
    binds a None through its adapter protocol (two failed attribute lookups per value), and
    a pending row has 12 of its 26 values None: binding them was half of the insert's CPU
    (100,000 rows: ~1.0 s vs ~0.45 s, benchmarks in docs/performance.md, "Sixth pass")."""
    for nulls, group in groupby(params, key=_null_columns):
        present = _present_columns(nulls)  # never fewer than two: the key's are never NULL
        yield _insert_statement(present), map(itemgetter(*present), group)


def _null_columns(values: tuple[Any, ...]) -> tuple[bool, ...]:
    return tuple(map(is_, values, _NULLS))


@cache
def _present_columns(nulls: tuple[bool, ...]) -> tuple[int, ...]:
    return tuple(
        index
        for index, (column, null) in enumerate(zip(TARGET_COLUMNS, nulls, strict=True))
        if not null or column in _WITH_DEFAULT
    )


@cache
def _insert_statement(present: tuple[int, ...]) -> str:
    columns = ", ".join(TARGET_COLUMNS[index] for index in present)
    values = ", ".join("?" for _ in present)
    return f"INSERT OR IGNORE INTO targets ({columns}) VALUES ({values})"


def _target_params(row: TargetRow) -> tuple[Any, ...]:
    values: dict[str, Any] = row.__dict__.copy()
    values["cluster"], values["svm"] = row.key.cluster, row.key.svm
    values["state"] = row.state.value
    values["facts"], values["evidence"] = _dumps(row.facts), _dumps(row.evidence)
    params: tuple[Any, ...] = _IN_COLUMN_ORDER(values)
    return params


def _target_from(row: sqlite3.Row) -> TargetRow:
    values = {column: row[column] for column in TARGET_COLUMNS}
    key = TargetKey(values.pop("cluster"), values.pop("svm"))
    values["state"] = TargetState(values["state"])
    values["facts"] = json.loads(values["facts"])
    values["evidence"] = json.loads(values["evidence"])
    return TargetRow(key=key, **values)


def _calibration_from(row: sqlite3.Row) -> Calibration:
    return Calibration(
        cluster=row["cluster"],
        description=row["description"],
        names_svm=bool(row["names_svm"]),
        job_uuid=row["job_uuid"],
        config_uuid=row["config_uuid"],
        confirmed=bool(row["confirmed"]),
        unstable=bool(row["unstable"]),
        record_lifetime_s=float(row["record_lifetime_s"]),
        provider=Provider(row["provider"]),
        operation=Operation(row["operation"]),
    )


def _transition_params(step: Transition) -> tuple[Any, ...]:
    return (
        step.run_id,
        step.key.cluster,
        step.key.svm,
        step.at,
        step.state.value,
        step.attempt,
        step.event,
        _dumps(step.detail),
    )


def _transition_from(row: sqlite3.Row) -> Transition:
    return Transition(
        run_id=row["run_id"],
        key=TargetKey(row["cluster"], row["svm"]),
        at=row["at"],
        state=TargetState(row["state"]),
        attempt=row["attempt"],
        event=row["event"],
        detail=json.loads(row["detail"]),
    )


def _calibration_params(calibration: Calibration, run_id: str | None) -> tuple[object, ...]:
    return (
        calibration.cluster,
        calibration.provider.value,
        calibration.operation.value,
        calibration.description,
        int(calibration.names_svm),
        calibration.job_uuid,
        calibration.config_uuid,
        int(calibration.confirmed),
        int(calibration.unstable),
        calibration.record_lifetime_s,
        run_id,
        time.time(),
    )
