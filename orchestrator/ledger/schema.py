"""The ledger's SQLite schema and its migrations, from the first release on.

A ledger holds its schema version in `schema_version` (one row per applied migration).
`migrate()` applies all the missing migrations in order in ONE `BEGIN IMMEDIATE`
transaction, each with its `schema_version` row, so two processes opening a fresh file at
once cannot both apply a migration and a crash leaves the ledger at the version it had.

Rules for later releases: never edit a released migration; append a new one. A ledger
written by a newer release (a version above `SCHEMA_VERSION`) is refused, not guessed at.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from orchestrator.errors import StateError


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    # rewrites rows after the statements, in the same transaction (what SQL cannot say)
    data: Callable[[sqlite3.Connection], None] | None = None


_V1_STATEMENTS = (
    """
    CREATE TABLE runs (
        id               TEXT PRIMARY KEY,
        mode             TEXT NOT NULL,          -- RunMode: run / emergency / plan
        reason           TEXT,                   -- the emergency reason
        inventory_path   TEXT NOT NULL,
        inventory_sha256 TEXT NOT NULL,
        options          TEXT NOT NULL,          -- JSON: the effective run options
        selection        TEXT NOT NULL,          -- JSON: the selectors as given
        operator         TEXT NOT NULL,          -- user@host
        started_at       REAL NOT NULL,          -- unix time
        ended_at         REAL,
        status           TEXT NOT NULL           -- RunStatus
    )
    """,
    "CREATE INDEX runs_by_start ON runs (started_at)",
    """
    CREATE TABLE targets (
        run_id          TEXT NOT NULL REFERENCES runs (id),
        cluster         TEXT NOT NULL,
        svm             TEXT NOT NULL,           -- '-' is the cluster scope
        state           TEXT NOT NULL,           -- TargetState
        outcome         TEXT,                    -- Outcome (plan: ready / not_ready)
        reason          TEXT,
        config_uuid     TEXT,
        key_id_before   TEXT,
        key_id_intended TEXT,
        key_id_after    TEXT,
        job_uuid        TEXT,
        attempts        INTEGER NOT NULL,
        wave            INTEGER,
        priority        INTEGER NOT NULL,
        error_code      TEXT,
        error_message   TEXT,
        error_class     TEXT,
        error_hint      TEXT,
        intent_at       REAL,
        started_at      REAL,
        finished_at     REAL,
        facts           TEXT NOT NULL,           -- JSON
        PRIMARY KEY (run_id, cluster, svm)
    )
    """,
    # `history` asks "the last rekeyed row per target": a small partial index answers it.
    """
    CREATE INDEX targets_rekeyed ON targets (cluster, svm, finished_at)
        WHERE outcome = 'rekeyed'
    """,
    """
    CREATE TABLE transitions (
        seq     INTEGER PRIMARY KEY AUTOINCREMENT,   -- the order of the audit trail
        run_id  TEXT NOT NULL,
        cluster TEXT NOT NULL,
        svm     TEXT NOT NULL,
        at      REAL NOT NULL,
        state   TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        event   TEXT NOT NULL,
        detail  TEXT NOT NULL,                       -- JSON
        FOREIGN KEY (run_id, cluster, svm) REFERENCES targets (run_id, cluster, svm)
    )
    """,
    "CREATE INDEX transitions_by_target ON transitions (run_id, cluster, svm)",
    # The audit trail is append-only, enforced by the database itself, not by convention.
    """
    CREATE TRIGGER transitions_no_update BEFORE UPDATE ON transitions
    BEGIN SELECT RAISE(ABORT, 'transitions are append-only'); END
    """,
    """
    CREATE TRIGGER transitions_no_delete BEFORE DELETE ON transitions
    BEGIN SELECT RAISE(ABORT, 'transitions are append-only'); END
    """,
    # For auditors with the sqlite3 shell: every confirmed rotation, times in ISO-8601 UTC.
    """
    CREATE VIEW rotations AS
    SELECT t.cluster, t.svm, t.run_id,
           strftime('%Y-%m-%dT%H:%M:%SZ', COALESCE(t.finished_at, r.started_at), 'unixepoch')
               AS rotated_at,
           COALESCE(t.key_id_after, t.key_id_intended) AS key_id,
           r.mode, r.operator, r.reason
    FROM targets AS t JOIN runs AS r ON r.id = t.run_id
    WHERE t.outcome = 'rekeyed' AND r.mode != 'plan'
    """,
)

_V2_STATEMENTS = (
    # The evidence of the current attempt (core.lifecycle.Evidence as JSON): once it says
    # `accepted`, no process may POST this target again in this run, resume included.
    "ALTER TABLE targets ADD COLUMN evidence TEXT NOT NULL DEFAULT '{}'",
    # What each cluster's rekey jobs look like (core.settling.Calibration), learnt from a
    # job whose uuid an answer named, and the measured lower bound of a job record's
    # lifetime: together they decide when "no job found" proves a POST was not submitted.
    """
    CREATE TABLE job_calibrations (
        cluster           TEXT PRIMARY KEY,
        description       TEXT NOT NULL,     -- template: {uuid}, {svm} stand for the target's
        names_svm         INTEGER NOT NULL,  -- the calibrating job carried its SVM's name
        job_uuid          TEXT NOT NULL,     -- the calibrating job
        config_uuid       TEXT NOT NULL,
        confirmed         INTEGER NOT NULL,  -- another configuration's job matched it
        unstable          INTEGER NOT NULL,  -- a known job did not match: never prove absence
        record_lifetime_s REAL NOT NULL,     -- lower bound, measured from job listings
        run_id            TEXT,              -- the run that last changed it
        updated_at        REAL NOT NULL
    )
    """,
)

_V3_STATEMENTS = (
    # The uuid the cluster reported at discovery (GET /api/cluster), per target row: the
    # ledger's memory of each inventory entry's identity, so a later run notices when a
    # name or address now leads to another cluster (`skipped: identity_mismatch`).
    "ALTER TABLE targets ADD COLUMN cluster_uuid TEXT",
    "CREATE INDEX targets_cluster_uuid ON targets (cluster) WHERE cluster_uuid IS NOT NULL",
)

_V4_STATEMENTS = (
    # Issue 15: a target is a key manager configuration of any provider, and a run performs
    # one of two rotations. Rows written before (NULL) are AWS rekey-external: the only
    # rotation earlier releases performed.
    "ALTER TABLE targets ADD COLUMN provider TEXT",  # core.providers.Provider
    "ALTER TABLE targets ADD COLUMN operation TEXT",  # core.providers.Operation
    # `history` asks "the last rekeyed row per target and operation".
    """
    CREATE INDEX targets_rekeyed_by_operation ON targets (cluster, svm, operation, finished_at)
        WHERE outcome = 'rekeyed'
    """,
    # Calibrations per cluster, provider and operation: each endpoint's jobs are worded
    # alike, but an Azure job never looks like an AWS one (the template would go unstable).
    """
    CREATE TABLE job_calibrations_v4 (
        cluster           TEXT NOT NULL,
        provider          TEXT NOT NULL,
        operation         TEXT NOT NULL,
        description       TEXT NOT NULL,
        names_svm         INTEGER NOT NULL,
        job_uuid          TEXT NOT NULL,
        config_uuid       TEXT NOT NULL,
        confirmed         INTEGER NOT NULL,
        unstable          INTEGER NOT NULL,
        record_lifetime_s REAL NOT NULL,
        run_id            TEXT,
        updated_at        REAL NOT NULL,
        PRIMARY KEY (cluster, provider, operation)
    )
    """,
    """
    INSERT INTO job_calibrations_v4
    SELECT cluster, 'aws', 'external', description, names_svm, job_uuid, config_uuid,
           confirmed, unstable, record_lifetime_s, run_id, updated_at FROM job_calibrations
    """,
    "DROP TABLE job_calibrations",
    "ALTER TABLE job_calibrations_v4 RENAME TO job_calibrations",
    # The auditors' view names the provider and the rotation.
    "DROP VIEW rotations",
    """
    CREATE VIEW rotations AS
    SELECT t.cluster, t.svm, t.run_id,
           COALESCE(t.provider, 'aws') AS provider,
           COALESCE(t.operation, 'external') AS operation,
           strftime('%Y-%m-%dT%H:%M:%SZ', COALESCE(t.finished_at, r.started_at), 'unixepoch')
               AS rotated_at,
           COALESCE(t.key_id_after, t.key_id_intended) AS key_id,
           r.mode, r.operator, r.reason
    FROM targets AS t JOIN runs AS r ON r.id = t.run_id
    WHERE t.outcome = 'rekeyed' AND r.mode != 'plan'
    """,
)

_V5_STATEMENTS = (
    # Issue 14: what a run records beside its options gets columns of its own; `options`
    # holds exactly the RunOptions (so reading a run back refuses any key it does not know).
    # JSON list of cluster names contacted with `tls: {verify: false}`.
    "ALTER TABLE runs ADD COLUMN tls_verify_disabled TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE runs ADD COLUMN estimate TEXT",  # JSON: a plan's PlanEstimate; NULL otherwise
)

LEGACY_TLS_KEY = "tls_verify_disabled"
LEGACY_ESTIMATE_KEY = "estimate"


def _v5_move_record_keys(conn: sqlite3.Connection) -> None:
    """Runs written before v5 kept the TLS flag and a plan's estimate inside `options`:
    move them to their columns (a flag of `true` meant every cluster of the run)."""
    runs = conn.execute("SELECT id, options FROM runs").fetchall()
    for run in runs:
        run_id, options = run[0], json.loads(run[1])
        if LEGACY_TLS_KEY not in options and LEGACY_ESTIMATE_KEY not in options:
            continue
        flag = options.pop(LEGACY_TLS_KEY, None)
        estimate = options.pop(LEGACY_ESTIMATE_KEY, None)
        if flag is True:
            rows = conn.execute(
                "SELECT DISTINCT cluster FROM targets WHERE run_id = ? ORDER BY cluster", (run_id,)
            ).fetchall()
            flag = [row[0] for row in rows]
        names = sorted(str(name) for name in flag) if isinstance(flag, list) else []
        conn.execute(
            "UPDATE runs SET options = ?, tls_verify_disabled = ?, estimate = ? WHERE id = ?",
            (
                json.dumps(options, sort_keys=True, separators=(",", ":")),
                json.dumps(names),
                json.dumps(estimate, sort_keys=True) if isinstance(estimate, dict) else None,
                run_id,
            ),
        )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, targets, transitions, rotations view", _V1_STATEMENTS),
    Migration(2, "targets.evidence, job_calibrations", _V2_STATEMENTS),
    Migration(3, "targets.cluster_uuid: the identity each cluster reported", _V3_STATEMENTS),
    Migration(4, "targets.provider/operation, calibrations per provider", _V4_STATEMENTS),
    Migration(
        5, "runs.tls_verify_disabled/estimate out of options", _V5_STATEMENTS, _v5_move_record_keys
    ),
)
"""Every migration, in order; `MIGRATIONS[n - 1].version == n`."""

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The schema version this release writes."""

TARGET_COLUMNS: tuple[str, ...] = (
    "run_id",
    "cluster",
    "svm",
    "state",
    "outcome",
    "reason",
    "config_uuid",
    "key_id_before",
    "key_id_intended",
    "key_id_after",
    "job_uuid",
    "attempts",
    "wave",
    "priority",
    "error_code",
    "error_message",
    "error_class",
    "error_hint",
    "intent_at",
    "started_at",
    "finished_at",
    "facts",
    "evidence",
    "cluster_uuid",
    "provider",
    "operation",
)
"""The `targets` columns in insert order (a test keeps them in step with `TargetRow`)."""


def schema_version(conn: sqlite3.Connection) -> int:
    """The version of the ledger behind `conn` (0 for an empty file)."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, where: str) -> int:
    """Bring the ledger behind `conn` (autocommit mode) to `SCHEMA_VERSION`; return it.

    `where` names the file in error messages. Raises StateError for a file that is some
    other SQLite database, or a ledger from a newer release.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = _checked_version(conn, where)
        for migration in MIGRATIONS[current:]:
            _apply(conn, migration)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return SCHEMA_VERSION


def _checked_version(conn: sqlite3.Connection, where: str) -> int:
    current = schema_version(conn)
    if current == 0 and conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone():
        raise StateError(f"{where} is an SQLite database but not an ontap-rekey ledger")
    if current > SCHEMA_VERSION:
        raise StateError(
            f"{where} has ledger schema v{current}, newer than this ontap-rekey "
            f"(v{SCHEMA_VERSION}): upgrade ontap-rekey"
        )
    return current


def _apply(conn: sqlite3.Connection, migration: Migration) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for statement in migration.statements:
        conn.execute(statement)
    if migration.data is not None:
        migration.data(conn)
    conn.execute(
        "INSERT INTO schema_version (version, description, applied_at) VALUES (?, ?, ?)",
        (migration.version, migration.description, time.time()),
    )
