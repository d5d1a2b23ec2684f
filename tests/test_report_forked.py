"""The report files written on two cores (`observe/reports/forked.py`): a forked child
writes report.md, report.html and junit.xml while the run writes the rest and renders the
recap. The files and the recap are the one-shot texts, byte for byte, for a run with every
outcome and a plan; a format that cannot be written raises the error the writer raised,
after the formats before it are in place, with nothing half-written and no temporary file;
a child that dies leaves its formats to the parent; an interrupt ends the child."""

from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest
from rich.console import Console

from orchestrator.commands import common
from orchestrator.ledger import report_rows
from orchestrator.ledger.records import RunRecord, TargetRow, Transition
from orchestrator.ledger.store import Ledger
from orchestrator.observe import reports
from orchestrator.observe.redaction import REDACTED, clear_secrets, register_secret
from orchestrator.observe.reports import FILE_NAMES, ReportFormat, document, forked
from orchestrator.observe.reports.redacted import redacted
from tests.synthetic_run import SECRET, make_plan, make_rows, make_run

ORDER = list(FILE_NAMES)  # the order the formats are written and renamed in


@pytest.fixture(autouse=True)
def _secret() -> Iterator[None]:
    clear_secrets()
    register_secret(SECRET)  # the synthetic run's failed target has it in its message
    yield
    clear_secrets()


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The children forked while the test runs (through the real `os.fork`)."""
    made: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            made.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return made


def _stored(tmp_path: Path, plan: bool = False) -> tuple[Ledger, RunRecord]:
    """The synthetic run (every outcome, retries, a secret in a message) or the plan, in a
    real ledger (the caller closes it)."""
    if plan:
        run, rows = make_plan()
        steps: list[Transition] = []
    else:
        run = make_run()
        rows, steps = make_rows(run)
    ledger = Ledger.open(tmp_path / "state.db")
    ledger.create_run(run)
    ledger.add_targets(rows)
    by_key = {row.key: row for row in rows}
    ledger.write([(by_key[step.key], step) for step in steps] or [(r, _last(r)) for r in rows])
    return ledger, run


def _last(row: TargetRow) -> Transition:
    return Transition(row.run_id, row.key, row.finished_at or 0.0, row.state, 1, "plan.judged")


def _read(ledger: Ledger, run: RunRecord) -> tuple[list[TargetRow], list[Transition]]:
    rows = report_rows.targets(ledger, run.run_id)
    return rows, report_rows.transitions(ledger, run.run_id, rows)


def _one_shot(ledger: Ledger, run: RunRecord) -> dict[ReportFormat, str]:
    """Each format as `ontap-rekey report RUN_ID --format X` renders it (whole, in one go)."""
    rows, steps = _read(ledger, run)
    return {fmt: reports.render(fmt, run, rows, steps, state=ledger.path) for fmt in ORDER}


def _files(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(folder.iterdir())}


def _finish(ledger: Ledger, run: RunRecord, folder: Path, console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    common.finish(ledger, run, folder, console)
    return file.getvalue()


def _consoles() -> Iterator[Console]:
    """A pipe (as `common.console()` makes it there) and a colour terminal."""
    yield Console(file=io.StringIO(), width=120, highlight=False)
    yield Console(file=io.StringIO(), width=150, force_terminal=True, color_system="truecolor")


@pytest.mark.parametrize("plan", [False, True], ids=["run", "plan"])
def test_finish_forked_writes_and_prints_what_it_writes_and_prints_unforked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int], plan: bool
) -> None:
    """Every file is the one-shot text, and files and stdout (pipe and colour terminal)
    are byte for byte those of the same `finish` with no child (the simple path)."""
    ledger, run = _stored(tmp_path, plan)
    with ledger:
        expected = _one_shot(ledger, run)
        forked_out = [_finish(ledger, run, tmp_path / "a", c) for c in _consoles()]
        assert len(forks) == 2  # one child per finish
        with monkeypatch.context() as simple:
            simple.setattr(forked, "can_fork", lambda: False)
            simple_out = [_finish(ledger, run, tmp_path / "a", c) for c in _consoles()]
        assert len(forks) == 2
        common.finish(ledger, run, tmp_path / "b", Console(file=io.StringIO()))
    assert forked_out == simple_out
    assert "\x1b[" in forked_out[1] and "\x1b[" not in forked_out[0]
    assert run.run_id in forked_out[0] and "reports: " in forked_out[0]
    written = _files(tmp_path / "a")
    assert written == {FILE_NAMES[fmt]: expected[fmt] for fmt in ORDER}  # no temporary file
    assert written == _files(tmp_path / "b")
    assert all(SECRET not in text for text in written.values())


def test_a_failing_recap_is_raised_after_every_file_is_in_place(
    tmp_path: Path, forks: list[int]
) -> None:
    ledger, run = _stored(tmp_path)
    with ledger:
        rows, steps = _read(ledger, run)

        def recap() -> None:
            raise ValueError("recap broke")

        with pytest.raises(ValueError, match="recap broke"):
            reports.write_reports_beside(
                tmp_path / "out", run, rows, steps, recap, state=ledger.path
            )
        expected = _one_shot(ledger, run)
    assert forks
    assert _files(tmp_path / "out") == {FILE_NAMES[f]: text for f, text in expected.items()}


def _failing_writer(
    monkeypatch: pytest.MonkeyPatch, failing: str, error: OSError, *, child_only: bool = False
) -> None:
    """The part `failing` writes a little of itself, then raises `error` (`child_only`: in
    the child only, which then dies instead)."""
    real = reports._Page.write
    parent = os.getpid()

    def write(page: reports._Page, part: str, handle: TextIO) -> bool:
        in_child = os.getpid() != parent
        if part == failing and (in_child or not child_only):
            handle.write("half a report")
            handle.flush()
            if child_only:
                os._exit(9)  # killed mid-file, as by the OOM killer
            raise error
        return real(page, part, handle)

    monkeypatch.setattr(reports._Page, "write", write)


# report.html is written in two halves, by the run and by the child
PARTS: list[tuple[str, ReportFormat]] = [(f, f) for f in ORDER] + [("html.tail", "html")]


@pytest.mark.parametrize(("failing", "fmt"), PARTS)
def test_a_format_that_cannot_be_written_raises_its_error_and_leaves_nothing_half_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    forks: list[int],
    failing: str,
    fmt: ReportFormat,
) -> None:
    """Whichever process writes it (json, md, html's second half: the child, then the run
    again, which raises; html's first half, junit, failed.txt: the run): the writer's own
    error, the formats before it in place and whole, nothing of it or after it, no
    temporary file. As the simple path."""
    ledger, run = _stored(tmp_path)
    with ledger:
        rows, steps = _read(ledger, run)
        expected = _one_shot(ledger, run)
    error = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out"))
    _failing_writer(monkeypatch, failing, error)
    for folder, can_fork in (("out", True), ("simple", False)):
        monkeypatch.setattr(forked, "can_fork", lambda can_fork=can_fork: can_fork)
        with pytest.raises(OSError, match="No space left") as raised:
            reports.write_reports(tmp_path / folder, run, rows, steps, state=ledger.path)
        assert raised.value is error
        before = ORDER[: ORDER.index(fmt)]
        assert _files(tmp_path / folder) == {FILE_NAMES[f]: expected[f] for f in before}
    assert len(forks) == 1


@pytest.mark.parametrize("part", ["json", "html.tail"])
def test_a_child_that_dies_mid_file_leaves_its_parts_to_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int], part: str
) -> None:
    ledger, run = _stored(tmp_path)
    with ledger:
        rows, steps = _read(ledger, run)
        expected = _one_shot(ledger, run)
    _failing_writer(monkeypatch, part, OSError("unused"), child_only=True)
    reports.write_reports(tmp_path / "out", run, rows, steps, state=ledger.path)
    assert len(forks) == 1
    assert _files(tmp_path / "out") == {FILE_NAMES[f]: text for f, text in expected.items()}


def test_a_secret_across_the_seam_of_the_two_halves_is_scrubbed(
    tmp_path: Path, forks: list[int]
) -> None:
    """Neither half holds it alone: the seam is looked at too, and the page is then
    written whole and scrubbed, as by one process."""
    seam = "</section>\n<h2>Targets</h2>"  # the first half's end, the second's start
    register_secret(seam)
    ledger, run = _stored(tmp_path)
    with ledger:
        rows, steps = _read(ledger, run)
        expected = _one_shot(ledger, run)
        written = reports.write_reports(tmp_path / "out", run, rows, steps, state=ledger.path)
    assert forks
    page = written["html"].read_text(encoding="utf-8")
    assert page == expected["html"]
    assert seam not in page and REDACTED in page
    assert _files(tmp_path / "out") == {FILE_NAMES[f]: text for f, text in expected.items()}


def test_a_temporary_file_that_cannot_be_made_stops_the_formats_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    """As the simple writer: the formats before it written, its error raised, no rest."""
    ledger, run = _stored(tmp_path)
    with ledger:
        rows, steps = _read(ledger, run)
        expected = _one_shot(ledger, run)
    real = tempfile.mkstemp

    def mkstemp(*, dir: Path, prefix: str, suffix: str) -> tuple[int, str]:
        if prefix == ".report.html.":
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real(dir=dir, prefix=prefix, suffix=suffix)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(PermissionError, match="Permission denied"):
        reports.write_reports(tmp_path / "out", run, rows, steps, state=ledger.path)
    assert forks
    assert _files(tmp_path / "out") == {FILE_NAMES[f]: expected[f] for f in ORDER[:2]}


def test_an_interrupt_in_the_run_ends_the_child_and_leaves_no_file(
    tmp_path: Path, forks: list[int]
) -> None:
    ledger, run = _stored(tmp_path)
    with ledger:
        rows, steps = _read(ledger, run)

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        reports.write_reports_beside(tmp_path / "out", run, rows, steps, interrupted)
    assert len(forks) == 1
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(ChildProcessError):  # killed and reaped: no zombie left behind
        os.waitpid(forks[0], os.WNOHANG)


def test_no_child_while_another_thread_runs() -> None:
    """A thread could hold a lock the child would need and never see released."""
    import threading

    assert forked.can_fork()  # the test process: one thread
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not forked.can_fork()
    finally:
        stop.set()
        thread.join()


def test_the_child_writes_its_parts_itself_and_the_run_alone_reads_the_transitions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    """The transitions are read once, by this process (it holds the ledger's connection),
    after the fork; the child finishes every one of its parts (none needs them)."""
    ledger, run = _stored(tmp_path)
    reported: list[dict[str, bool]] = []
    collect = forked._collect

    def collected(pid: int, read_end: int) -> dict[str, bool]:
        reported.append(collect(pid, read_end))
        return reported[-1]

    monkeypatch.setattr(forked, "_collect", collected)
    readers: list[int] = []
    with ledger:
        rows = report_rows.targets(ledger, run.run_id)

        def transitions() -> list[Transition]:
            readers.append(os.getpid())
            return report_rows.transitions(ledger, run.run_id, rows)

        reports.write_reports_beside(
            tmp_path / "out", run, rows, transitions, lambda: None, state=ledger.path
        )
        expected = _one_shot(ledger, run)
    assert len(forks) == 1 and readers == [os.getpid()]
    assert reported == [{"json": True, "md": True, "html.tail": True, "junit": True}]
    assert _files(tmp_path / "out") == {FILE_NAMES[f]: text for f, text in expected.items()}


def test_the_summary_is_the_report_without_its_targets_redacted_alike(tmp_path: Path) -> None:
    """report.html's first half is rendered from the summary where the child builds the
    document: the same sections, the same values after redaction (a secret registered)."""
    ledger, run = _stored(tmp_path)
    with ledger:
        rows, steps = _read(ledger, run)
    whole = reports.build_report(run, rows, steps)
    summary = redacted(document.build_summary(run, rows))
    assert summary == {key: value for key, value in whole.items() if key != "targets"}
    assert list(whole) == [*summary, "targets"]  # report.json's order of sections
    assert SECRET not in str(summary) and REDACTED in str(summary)  # the failed target's error


def test_no_process_to_fork_leaves_every_part_to_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger, run = _stored(tmp_path)
    with ledger:
        rows, steps = _read(ledger, run)
        expected = _one_shot(ledger, run)

    def fork() -> int:
        raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", fork)
    reports.write_reports(tmp_path / "out", run, rows, steps, state=ledger.path)
    assert _files(tmp_path / "out") == {FILE_NAMES[f]: text for f, text in expected.items()}
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()  # SIGINT not left blocked


KILLED_RUN = """
import os, signal, sys
from pathlib import Path
from orchestrator.observe import reports
from tests.synthetic_run import make_rows, make_run
run = make_run()
rows, steps = make_rows(run)
def killed():
    os.kill(os.getpid(), signal.SIGKILL)  # the run dies while its child writes
reports.write_reports_beside(Path(sys.argv[1]), run, rows * 200, steps, killed)
"""


def test_a_run_killed_while_its_child_writes_leaves_no_temporary_file(tmp_path: Path) -> None:
    """SIGKILL of the run: nobody will rename or remove the temporary files, so the
    child removes them all (the run's too) once it sees its parent gone."""
    out = tmp_path / "out"
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(out)], cwd=root, timeout=120, check=False
    )
    assert done.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 60  # generous: the child finishes its part first
    while list(out.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(out.iterdir()) == []
