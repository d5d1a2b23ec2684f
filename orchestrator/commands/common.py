"""Wiring shared by `run`, `resume` and `plan`: logging, the ledger, reports, the recap."""

from __future__ import annotations

import gc
import os
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from orchestrator.core.durations import parse_duration
from orchestrator.errors import StateError, UserError
from orchestrator.ledger import DEFAULT_STATE, report_rows
from orchestrator.ledger.records import RunRecord
from orchestrator.ledger.store import Ledger
from orchestrator.observe.logging import LOG_LEVELS, configure_logging, resolve_log_level
from orchestrator.observe.progress import ProgressView, make_progress
from orchestrator.observe.recap import render_recap
from orchestrator.observe.redaction import register_secret
from orchestrator.observe.reports import collector, forked, write_reports_beside
from orchestrator.ontap.connect import set_secret_sink

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_REPORT_ROOT = Path("ontap-rekey-reports")


def output_options(func: F) -> F:
    """`--state`, `--report-dir`, `--log-file`, `--log-format`, `--log-level`."""
    decorators = [
        click.option(
            "--state",
            type=click.Path(path_type=Path),
            default=DEFAULT_STATE,
            show_default=True,
            help="The ledger (SQLite) file.",
        ),
        click.option(
            "--report-dir",
            type=click.Path(path_type=Path),
            default=None,
            help="Where reports go [./ontap-rekey-reports/<run_id>/].",
        ),
        click.option(
            "--log-file",
            type=click.Path(path_type=Path),
            default=None,
            help="Also write JSON log lines to this file.",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["json", "console"]),
            default=None,
            help="Log format on stderr [json unless stderr is a terminal].",
        ),
        click.option(
            "--log-level",
            type=click.Choice(LOG_LEVELS),
            default=None,
            help="Lowest level logged [$ONTAP_REKEY_LOG_LEVEL, else info].",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def setup_logging(
    log_file: Path | None, log_format: str | None, log_level: str | None = None
) -> None:
    """Logs per `--log-file`/`--log-format`/`--log-level` (ONTAP_REKEY_LOG_LEVEL when no
    option, else info), and ONTAP_REKEY_STDERR_LEVEL an extra threshold for stderr only."""
    try:
        level = resolve_log_level(log_level)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    configure_logging(
        log_format=log_format,  # type: ignore[arg-type]
        log_file=log_file,
        level=level,
        stream_level=os.environ.get("ONTAP_REKEY_STDERR_LEVEL"),
    )
    # Every secret the ONTAP connections read is scrubbed from every log line from then on.
    set_secret_sink(register_secret)


def open_ledger(path: Path) -> Ledger:
    """The ledger of a command that writes it (run, plan, resume), checked before any request:
    its folder must exist and take new files (the WAL, the run lock)."""
    if not path.parent.exists():
        raise StateError(f"--state {path}: the folder {path.parent} does not exist")
    if not path.parent.is_dir():
        raise StateError(f"--state {path}: {path.parent} is not a folder")
    problem = _not_writable(path.parent)
    if problem is not None:
        raise StateError(f"--state {path}: cannot write in the folder {path.parent}: {problem}")
    return Ledger.open(path)


def check_report_dir(report_dir: Path | None) -> None:
    """The report folder (given, or the default root) can be created and written: found out
    before the first request, not after the rekeys (UserError, exit 2)."""
    folder = report_dir or DEFAULT_REPORT_ROOT
    option = "--report-dir" if report_dir is not None else "the report folder"
    problem = _not_creatable(folder)
    if problem is not None:
        raise UserError(f"{option} {folder}: {problem} (pass --report-dir DIR)")


def _not_creatable(folder: Path) -> str | None:
    """Why `folder` cannot be made (or written, when it exists); None when it can."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    problem = _not_writable(existing)
    if problem is not None:
        return f"cannot write in {existing}: {problem}"
    return None


def _not_writable(folder: Path) -> str | None:
    """Whether a new file can be made in `folder`, tried for real (permissions, ACLs,
    read-only mounts and a full disk all show); the probe leaves nothing behind."""
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".ontap-rekey-probe-"):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def refuse_if_running(ledger: Ledger) -> None:
    running = ledger.running_run()
    if running is not None:
        raise StateError(
            f"run {running.run_id} is in progress on {ledger.path} "
            f"(started by {running.operator}); wait for it or use another --state"
        )


def console() -> Console:
    """The terminal for progress and the recap (stdout; plain when not a terminal)."""
    plain = not sys.stdout.isatty()
    # rich would use 80 columns on a pipe and clip the recap's columns
    return Console(
        no_color="NO_COLOR" in os.environ or None, highlight=False, width=120 if plain else None
    )


def progress(out: Console) -> ProgressView:
    return make_progress(out)


def release_engine_memory() -> None:
    """Collect what the finished rotation left in reference cycles (its tasks, pools,
    clients and their connections) before the report phase allocates its own: at 100,000
    targets the two phases' memory otherwise add up in the run's peak instead of the
    reports reusing the rotation's freed memory."""
    gc.collect()


def finish(ledger: Ledger, run: RunRecord, report_dir: Path | None, out: Console) -> Path:
    """Write the report files and print the recap; returns the report folder."""
    target = report_dir or DEFAULT_REPORT_ROOT / run.run_id
    with collector.paused():  # the rows: ~50,000 objects, none in a cycle
        targets = report_rows.targets(ledger, run.run_id)  # the columns the reports read
    # read by this process once the child is forked, while the child writes its files
    transitions = partial(report_rows.transitions, ledger, run.run_id, targets)
    recap = partial(render_recap, run, targets, (), state=str(ledger.path), report_dir=str(target))
    if forked.can_fork():  # the recap rendered while a child writes files, printed after them
        _, text = write_reports_beside(
            target, run, targets, transitions, partial(_captured, out, recap), state=ledger.path
        )
        _print_captured(out, text)
    else:
        write_reports_beside(target, run, targets, transitions, _nothing, state=ledger.path)
        recap(out)
    out.print(f"reports: {target}/ (report.json, report.md, report.html, junit.xml, failed.txt)")
    out.print(f"run id: {run.run_id}")
    return target


def _nothing() -> None:
    return None


def _captured(out: Console, render: Callable[[Console], None]) -> str:
    """What `render(out)` would print, as text (the same console: width, colour, terminal)."""
    with out.capture() as capture:
        render(out)
    return capture.get()


def _print_captured(out: Console, text: str) -> None:
    """`text` written as rich writes what it prints on POSIX (`Console._check_buffer`)."""
    try:
        out.file.write(text)
        out.file.flush()
    except BrokenPipeError:
        out.on_broken_pipe()


def deadline_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UserError(f"--deadline: {exc}") from None


def require_yes_or_terminal(yes: bool) -> None:
    if not yes and not sys.stdin.isatty():
        raise UserError("--yes is required when stdin is not a terminal (no one can confirm)")
