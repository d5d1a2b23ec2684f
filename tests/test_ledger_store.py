"""The SQLite ledger: schema and migrations, runs, targets, transitions, locking, rotations."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.targets import Outcome, TargetKey, TargetState
from orchestrator.errors import StateError
from orchestrator.ledger import store
from orchestrator.ledger.records import RunMode, RunStatus, TargetRow, Transition
from orchestrator.ledger.schema import MIGRATIONS, SCHEMA_VERSION, TARGET_COLUMNS, Migration
from orchestrator.ledger.store import Ledger
from tests.ledger_factories import (
    DAY,
    active_runs,
    integrity_problems,
    key,
    make_run,
    open_ledger,
    record_run,
    rekeyed,
    step,
)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path) as opened:
        yield opened


def _raw(path: Path) -> sqlite3.Connection:
    """A connection of our own, as another process (or an auditor's shell) would have."""
    return sqlite3.connect(path)


# -- schema and migrations -----------------------------------------------------------------


def test_a_new_ledger_is_at_the_current_version_and_reopens_unchanged(tmp_path: Path) -> None:
    """Every migration is applied once; reopening applies nothing again."""
    path = tmp_path / "ledger.db"
    with Ledger.open(path) as ledger:
        ledger.create_run(make_run("r1"))
    with Ledger.open(path) as ledger:
        assert ledger.get_run("r1").run_id == "r1"
    with _raw(path) as conn:
        versions = conn.execute("SELECT version FROM schema_version").fetchall()
        assert versions == [(m.version,) for m in MIGRATIONS]
        assert versions[-1] == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_v1_ledger_is_migrated_and_keeps_its_rows(tmp_path: Path) -> None:
    """A ledger written before cluster uuids were recorded: its rows read back with none."""
    path = tmp_path / "ledger.db"
    with _raw(path) as conn:
        for migration in MIGRATIONS[:1]:
            _apply_v1(conn, migration)
        conn.execute(
            "INSERT INTO runs VALUES ('r1', 'run', NULL, 'f.yaml', 'ab', '{}', '{}', 'me', 1, 2,"
            " 'finished')"
        )
        conn.execute(
            "INSERT INTO targets (run_id, cluster, svm, state, outcome, attempts, priority, facts)"
            " VALUES ('r1', 'east', 'svm1', 'done', 'rekeyed', 1, 0, '{}')"
        )
    with Ledger.open(path) as ledger:
        (row,) = ledger.targets("r1")
        assert (str(row.key), row.cluster_uuid) == ("east/svm1", None)
        assert ledger.recorded_cluster_uuids() == {}


def _apply_v1(conn: sqlite3.Connection, migration: Migration) -> None:
    conn.execute(
        "CREATE TABLE schema_version ("
        " version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    for statement in migration.statements:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1, 'v1', 0)")


def test_the_latest_recorded_cluster_uuid_wins(ledger: Ledger) -> None:
    for run_id, started, uuid in (("r2", 20.0, "uuid-new"), ("r1", 10.0, "uuid-old")):
        ledger.create_run(dataclasses.replace(make_run(run_id), started_at=started))
        ledger.add_targets([TargetRow(run_id, TargetKey("east", "svm1"), cluster_uuid=uuid)])
    ledger.create_run(dataclasses.replace(make_run("r3"), started_at=30.0))
    ledger.add_targets([TargetRow("r3", TargetKey("east", "svm2"))])  # not discovered: no uuid
    assert ledger.recorded_cluster_uuids() == {"east": "uuid-new"}


def test_migrations_are_numbered_in_order() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_target_columns_cover_every_target_row_field() -> None:
    """A field added to TargetRow without a migration fails here, not in production."""
    fields = {f.name for f in dataclasses.fields(TargetRow)} - {"key"} | {"cluster", "svm"}
    assert set(TARGET_COLUMNS) == fields


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="does not exist"):
        Ledger.open(tmp_path / "nowhere" / "ledger.db")


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    path.write_text("inventory: not a database\n" * 100)
    with pytest.raises(StateError, match="cannot open the ledger"):
        Ledger.open(path)


def test_another_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with _raw(path) as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(StateError, match="not an ontap-rekey ledger"):
        Ledger.open(path)


def test_a_ledger_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    Ledger.open(path).close()
    with _raw(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'future', 0)")
    with pytest.raises(StateError, match="newer than this ontap-rekey"):
        Ledger.open(path)


def test_a_fresh_ledger_passes_the_integrity_check(ledger: Ledger) -> None:
    record_run(ledger, "r1", {"east/svm1": (Outcome.REKEYED, time.time())})
    assert integrity_problems(ledger.path) == []


# -- runs ---------------------------------------------------------------------------------


def test_a_run_reads_back_as_written(ledger: Ledger) -> None:
    run = replace(make_run("r1"), mode=RunMode.EMERGENCY, reason="INC-42 key exposure")
    ledger.create_run(run)
    assert ledger.get_run("r1") == run


def test_runs_are_listed_newest_first(ledger: Ledger) -> None:
    for number, started in enumerate((100.0, 300.0, 200.0)):
        ledger.create_run(make_run(f"r{number}", started_at=started))
    assert [r.run_id for r in ledger.list_runs()] == ["r1", "r2", "r0"]
    assert [r.run_id for r in ledger.list_runs(limit=1)] == ["r1"]


def test_an_unknown_run_names_the_recent_ones(ledger: Ledger) -> None:
    ledger.create_run(make_run("20261127-181530-3f9a"))
    with pytest.raises(StateError, match=r"no run r9 in .*recent runs: 20261127-181530-3f9a"):
        ledger.get_run("r9")
    with pytest.raises(StateError, match="no run r9"):
        ledger.set_run_status("r9", RunStatus.FINISHED)


def test_a_run_id_cannot_be_reused(ledger: Ledger) -> None:
    ledger.create_run(make_run("r1"))
    with pytest.raises(StateError, match="already exists"):
        ledger.create_run(make_run("r1"))


def test_ending_a_run_stamps_its_end_and_resuming_clears_it(ledger: Ledger) -> None:
    ledger.create_run(make_run("r1"))
    ledger.set_run_status("r1", RunStatus.INTERRUPTED)
    interrupted = ledger.get_run("r1")
    assert interrupted.status is RunStatus.INTERRUPTED
    assert interrupted.ended_at is not None
    ledger.set_run_status("r1", RunStatus.ACTIVE)
    assert ledger.get_run("r1").ended_at is None
    ledger.set_run_status("r1", RunStatus.FINISHED, ended_at=1234.5)
    assert ledger.get_run("r1").ended_at == 1234.5


def test_new_run_ids_are_readable_sortable_and_unique(ledger: Ledger) -> None:
    """Unique among the runs recorded: each id is recorded before the next is asked for, as
    a run does (ids never recorded may repeat: 4 hex digits in one second)."""
    ids = []
    for _ in range(50):
        ids.append(ledger.new_run_id())
        ledger.create_run(make_run(ids[-1]))
    assert all(re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", run_id) for run_id in ids)
    assert ids[0][:15] <= ids[-1][:15]
    assert len(set(ids)) == len(ids)


def test_a_run_id_already_recorded_is_never_handed_out(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The random part on cue: the same digits twice in one second, then others."""
    monkeypatch.setattr(time, "gmtime", lambda: time.struct_time((2026, 12, 1, 9, 0, 0, 1, 335, 0)))
    digits = iter(["3f9a", "3f9a", "b001"])
    monkeypatch.setattr("orchestrator.ledger.store.secrets.token_hex", lambda _n: next(digits))
    first = ledger.new_run_id()
    ledger.create_run(make_run(first))
    assert (first, ledger.new_run_id()) == ("20261201-090000-3f9a", "20261201-090000-b001")


# -- targets and transitions ----------------------------------------------------------------


def test_write_upserts_rows_and_appends_transitions(ledger: Ledger) -> None:
    ledger.create_run(make_run("r1"))
    row = TargetRow("r1", key("east/svm1"), facts={"version": "9.14.1"})
    ledger.add_targets([row])
    intent = replace(row, state=TargetState.INTENT, attempts=1, intent_at=10.0)
    submitted = replace(intent, state=TargetState.SUBMITTED, job_uuid="job-1")
    ledger.write([(intent, step(intent, "attempt.intent"))])
    ledger.write([(submitted, step(submitted, "attempt.submitted", job_uuid="job-1"))])
    assert ledger.targets("r1") == [submitted]
    trail = ledger.transitions("r1")
    assert [(t.state, t.event) for t in trail] == [
        (TargetState.INTENT, "attempt.intent"),
        (TargetState.SUBMITTED, "attempt.submitted"),
    ]
    assert trail[1].detail == {"job_uuid": "job-1"}


def test_a_written_row_is_stored_column_by_column_as_compact_sorted_json(
    ledger: Ledger,
) -> None:
    """What an auditor's shell sees: every column of the row, facts, evidence and detail
    as compact JSON with sorted keys (an odd value as its text), the state by name."""
    ledger.create_run(make_run("r1"))
    row = TargetRow("r1", key("east/svm1"))
    ledger.add_targets([row])
    fields = {
        column: f"v-{column}"
        for column in TARGET_COLUMNS
        if column not in {"run_id", "cluster", "svm", "state", "facts", "evidence"}
    }
    fields |= {"attempts": 2, "wave": 3, "priority": 4, "intent_at": 5.5}
    written = replace(
        row,
        state=TargetState.VERIFYING,
        facts={"zeta": [1, 2], "alpha": {"b": None, "a": Path("/x")}},
        evidence={"how": "post", "accepted": True},
        **fields,
    )
    ledger.write([(written, step(written, "target.verifying", observed="post_done", a=1))])
    with _raw(ledger.path) as conn:
        stored = conn.execute(f"SELECT {', '.join(TARGET_COLUMNS)} FROM targets").fetchone()
        detail = conn.execute("SELECT detail FROM transitions").fetchone()[0]
    assert dict(zip(TARGET_COLUMNS, stored, strict=True)) == {
        "run_id": "r1",
        "cluster": "east",
        "svm": "svm1",
        "state": "verifying",
        "facts": '{"alpha":{"a":"/x","b":null},"zeta":[1,2]}',
        "evidence": '{"accepted":true,"how":"post"}',
        **fields,
    }
    assert detail == '{"a":1,"observed":"post_done"}'


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.builds(Path, st.text(min_size=1, max_size=5)),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


@given(st.dictionaries(st.text(max_size=8), _json_values, max_size=6))
def test_stored_json_is_json_dumps_compact_sorted_ascii(value: dict[str, Any]) -> None:
    """The encoder built once (facts, evidence, details) writes what `json.dumps` with the
    ledger's options writes: sorted keys, no spaces, ASCII escapes, odd values as text,
    NaN and infinities as JavaScript names."""
    expected = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    assert store._dumps(value) == expected


def test_add_targets_never_overwrites_a_recorded_row(ledger: Ledger) -> None:
    """Resume may add what discovery finds again without resetting recorded state."""
    ledger.create_run(make_run("r1"))
    row = TargetRow("r1", key("east/svm1"))
    done = rekeyed(row, at=5.0)
    ledger.add_targets([row])
    ledger.write([(done, None)])
    ledger.add_targets([row, TargetRow("r1", key("east/svm2"))])
    assert ledger.targets("r1") == [done, TargetRow("r1", key("east/svm2"))]


def test_a_batch_is_one_transaction(ledger: Ledger) -> None:
    """One bad item (a transition of a target never recorded) and nothing of it lands."""
    ledger.create_run(make_run("r1"))
    good = replace(TargetRow("r1", key("east/svm1")), state=TargetState.INTENT)
    orphan = Transition("r1", key("east/ghost"), 1.0, TargetState.INTENT)
    with pytest.raises(sqlite3.IntegrityError):
        ledger.write([(good, step(good)), (good, orphan)])
    assert ledger.targets("r1") == []
    assert ledger.transitions("r1") == []


def test_a_row_of_an_unknown_run_is_refused(ledger: Ledger) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        ledger.add_targets([TargetRow("ghost-run", key("east/svm1"))])


def test_transitions_are_append_only(ledger: Ledger) -> None:
    record_run(ledger, "r1", {"east/svm1": (Outcome.REKEYED, 1.0)})
    with _raw(ledger.path) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE transitions SET event = 'forged'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM transitions")
    assert len(ledger.transitions("r1")) == 1


def test_seen_targets_include_every_run(ledger: Ledger) -> None:
    record_run(ledger, "r1", {"east/svm1": (Outcome.FAILED, 1.0)})
    record_run(ledger, "p1", {"west/-": (Outcome.SKIPPED, 2.0)}, mode=RunMode.PLAN)
    assert ledger.seen_targets() == {key("east/svm1"), key("west/-")}


# -- last rotations ----------------------------------------------------------------------


def test_last_rotations_take_the_latest_rekeyed_across_runs(ledger: Ledger) -> None:
    now = time.time()
    record_run(
        ledger,
        "r1",
        {
            "east/svm1": (Outcome.REKEYED, now - 100 * DAY),
            "east/svm2": (Outcome.REKEYED, now - 99 * DAY),
        },
    )
    record_run(
        ledger,
        "r2",
        {"east/svm1": (Outcome.REKEYED, now - DAY), "east/svm2": (Outcome.UNVERIFIED, now - DAY)},
    )
    record_run(ledger, "p1", {"east/svm2": (Outcome.REKEYED, now)}, mode=RunMode.PLAN)
    rotations = ledger.last_rotations()
    assert {k: r.run_id for k, r in rotations.items()} == {
        key("east/svm1"): "r2",
        key("east/svm2"): "r1",
    }
    assert rotations[key("east/svm1")].key_id == "key-r2"
    assert rotations[key("east/svm2")].at == pytest.approx(now - 99 * DAY)


def test_last_rotations_can_be_filtered(ledger: Ledger) -> None:
    record_run(
        ledger, "r1", {"east/svm1": (Outcome.REKEYED, 1.0), "west/svm1": (Outcome.REKEYED, 1.0)}
    )
    assert set(ledger.last_rotations(lambda k: k.cluster == "west")) == {key("west/svm1")}


# -- run exclusivity -----------------------------------------------------------------------


def test_a_second_ledger_cannot_take_a_held_run_lock(tmp_path: Path) -> None:
    with open_ledger(tmp_path) as first, open_ledger(tmp_path) as second:
        first.create_run(make_run("r1"))
        first.acquire("r1")
        first.acquire("r1")  # re-acquiring the same run is a no-op
        assert first.running_run() == second.running_run() == first.get_run("r1")
        with pytest.raises(StateError, match=r"run r1 \(pid \d+ on .*\) is in progress"):
            second.acquire("r2")
        first.release()
        assert second.running_run() is None
        second.acquire("r2")


def test_one_ledger_holds_one_run_at_a_time(ledger: Ledger) -> None:
    ledger.acquire("r1")
    with pytest.raises(StateError, match="already holds"):
        ledger.acquire("r2")


def test_the_lock_is_exclusive_across_threads(tmp_path: Path) -> None:
    """A ledger opened in another thread sees the lock as another process would."""
    errors: list[BaseException] = []

    def contender() -> None:
        with open_ledger(tmp_path) as other:
            try:
                other.acquire("r2")
            except StateError as exc:
                errors.append(exc)

    with open_ledger(tmp_path) as ledger:
        ledger.acquire("r1")
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join()
    assert len(errors) == 1
    assert "run r1" in str(errors[0])


_HOLDER = """
import sys
from pathlib import Path
from orchestrator.ledger.store import Ledger
ledger = Ledger.open(Path(sys.argv[1]))
ledger.acquire(sys.argv[2])
print("locked", flush=True)
sys.stdin.read()  # hold until killed
"""


@pytest.fixture
def holder_process(ledger: Ledger) -> Iterator[subprocess.Popen[str]]:
    """Another process running run r1 on the same ledger."""
    ledger.create_run(make_run("r1"))
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(ledger.path), "r1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def test_a_run_held_by_another_process_is_running(
    ledger: Ledger, holder_process: subprocess.Popen[str]
) -> None:
    running = ledger.running_run()
    assert running is not None
    assert running.run_id == "r1"
    with pytest.raises(StateError, match=rf"run r1 \(pid {holder_process.pid} on "):
        ledger.acquire("r2")


def test_a_sigkilled_run_frees_its_lock_and_counts_as_crashed(
    ledger: Ledger, holder_process: subprocess.Popen[str]
) -> None:
    """The kernel drops the flock with the process: the ACTIVE run is resumable."""
    os.kill(holder_process.pid, signal.SIGKILL)
    holder_process.wait()
    assert ledger.running_run() is None
    assert [run.run_id for run in active_runs(ledger)] == ["r1"]
    ledger.acquire("r1")  # resume takes it over
    assert ledger.running_run() == ledger.get_run("r1")


def test_a_batch_larger_than_one_statement_lands_whole_and_the_last_row_wins(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes go out as multi-row statements; chunking and duplicate rows keep the rules."""
    monkeypatch.setattr("orchestrator.ledger.store._MAX_PARAMS", 100)  # a few rows each
    run = make_run("r-chunks")
    ledger.create_run(run)
    rows = [TargetRow(run_id=run.run_id, key=key(f"c{i:02d}/svm1")) for i in range(40)]
    ledger.add_targets(rows)
    batch = [(replace(r, state=TargetState.INTENT, attempts=1), None) for r in rows]
    batch += [(replace(r, state=TargetState.DONE, outcome="rekeyed"), None) for r in rows]
    batch += [(rows[0], Transition(run.run_id, rows[0].key, 1.0, TargetState.DONE))] * 3
    ledger.write(batch)
    stored = ledger.targets(run.run_id)
    assert len(stored) == 40
    assert {(r.state, r.outcome) for r in stored} - {(TargetState.DONE, "rekeyed")} == {
        (TargetState.PENDING, None)  # rows[0] came last in the batch, unchanged
    }
    assert len(ledger.transitions(run.run_id)) == 3


def test_recorded_jobs_are_those_of_recent_or_unended_rotations(ledger: Ledger) -> None:
    """Settling excludes the jobs earlier runs recorded (the row's job and its facts'
    list): runs that ended before `since` and plans do not count."""
    now = time.time()
    for run_id, mode, ended_at in (
        ("old", RunMode.RUN, now - 2 * DAY),
        ("recent", RunMode.RUN, now - 60.0),
        ("crashed", RunMode.RUN, None),
        ("plan", RunMode.PLAN, now - 60.0),
    ):
        ledger.create_run(make_run(run_id, mode=mode, started_at=now - 3 * DAY))
        row = replace(
            TargetRow(run_id, key("c1/svm1")),
            job_uuid=f"job-{run_id}",
            facts={"earlier_jobs": [f"first-{run_id}"]},
        )
        ledger.add_targets([row])
        if ended_at is not None:
            ledger.set_run_status(run_id, RunStatus.FINISHED, ended_at)
    ledger.add_targets([TargetRow("recent", key("c1/svm2"))])  # no job: not listed
    assert ledger.recorded_jobs(now - DAY, "earlier_jobs") == {
        key("c1/svm1"): {"job-recent", "first-recent", "job-crashed", "first-crashed"}
    }


class _RecordingConnection:
    """Just `execute`, as `_execute_rows` uses a connection: what it was asked to run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[object]]] = []

    def execute(self, sql: str, params: list[object]) -> None:
        self.calls.append((sql, params))


def test_rows_go_out_in_power_of_two_statements_so_few_distinct_statements_exist() -> None:
    """The sqlite3 module keeps every distinct statement it compiled (up to 128), and a
    statement of n rows is a program of kilobytes per row: one statement text per batch
    size held tens of MB at 10,000 targets. Whatever the batch sizes, at most one text
    per power of two, and every row's values still go out once, in order."""
    from orchestrator.ledger.store import _MAX_PARAMS, _execute_rows

    width = len(TARGET_COLUMNS)
    per_statement = _MAX_PARAMS // width
    texts: set[str] = set()
    for n in range(1, per_statement + 80):
        conn = _RecordingConnection()
        rows = [tuple(range(i * width, (i + 1) * width)) for i in range(n)]
        _execute_rows(conn, "INSERT INTO t", " TAIL", rows)  # type: ignore[arg-type]
        sizes = [len(params) // width for _, params in conn.calls]
        assert all(size & (size - 1) == 0 and size <= per_statement for size in sizes)
        assert sizes == sorted(sizes, reverse=True) and sum(sizes) == n
        assert [v for _, params in conn.calls for v in params] == [v for r in rows for v in r]
        texts.update(sql for sql, _ in conn.calls)
    assert len(texts) <= per_statement.bit_length()


def test_batches_of_many_sizes_keep_sqlite_memory_small(ledger: Ledger) -> None:
    """The same on a real ledger: SQLite's own memory (statements, page cache) after 150
    batches of 1 to 150 rows stays a few MB (~20 MB with a statement per size)."""
    import ctypes
    import importlib

    extension = importlib.import_module("_sqlite3")  # sqlite3's C part: it links SQLite
    try:
        used = ctypes.CDLL(extension.__file__).sqlite3_memory_used
    except (AttributeError, OSError):
        pytest.skip("SQLite's memory counter is not reachable from this build")
    used.restype = ctypes.c_int64
    run = make_run("r-sizes")
    ledger.create_run(run)
    rows = [TargetRow(run_id=run.run_id, key=key(f"c/svm{i:03d}")) for i in range(150)]
    ledger.add_targets(rows)
    before = used()
    for n in range(1, 151):
        ledger.write([(replace(row, attempts=n), None) for row in rows[:n]])
    assert used() - before < 8 * 2**20
    assert {row.attempts for row in ledger.targets(run.run_id)} == {150}  # the last batch
