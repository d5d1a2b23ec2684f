"""The report files written on two cores: a forked child writes some, this process the rest.

The report phase is pure CPU on one core while the other is idle (the fleet has nothing
left to do), and every part of it is wall time added to the run. So, once the rows are
read and the document built, a child made by `os.fork` (it shares them, copy on write,
and needs no pickling) writes its formats while this process writes the others and does
its own `work` (the recap, rendered but not yet printed). A part is a file, or a piece of
one (report.html is written in two halves, `reports/halves.py`).

What the files and the errors are stays what one process writing them made, by
construction:

- Every part is written to its temporary file (made here, before the fork, in the order
  the formats were always written) and put in place only here, in that order, once every
  part before it is written: a reader never sees half a report, and a failure leaves what
  one process left (the formats before the failing one in place, nothing of the others,
  no temporary file).
- The child only says which parts it finished. A part it did not finish (it failed, or
  the child died) is written again here, so its error, if it fails again, is raised by
  the same code as in one process, here: no exception crosses a process.
- The child never returns into the caller's frames (its ledger, its run lock, its
  `finally` blocks): it ends with `os._exit` whatever happens. It touches no SQLite
  connection, no log and no terminal. A fork happens only while this process runs one
  thread (so no lock is held by a thread the child would not have); otherwise, and where
  `os.fork` does not exist, everything is written here, one format after another.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import TextIO, TypeVar

T = TypeVar("T")
# (part, its open temporary file): write that part; what it returns goes to `Place`
# (report.html's two halves: whether each has nothing to scrub).
Write = Callable[[str, TextIO], bool]
# (part, every temporary file not yet placed, what each part's writer returned): put the
# part's file in place and drop the temporaries it used from the mapping.
Place = Callable[[str, dict[str, Path], Mapping[str, bool]], None]

_SIGNALS = {signal.SIGINT, signal.SIGTERM}  # not acted on between the fork and the child's try


def can_fork() -> bool:
    """Whether a child may be forked now: `os.fork` exists and no other thread runs."""
    return hasattr(os, "fork") and threading.active_count() == 1


def write_files(
    paths: Mapping[str, Path],
    write: Write,
    child: Collection[str],
    work: Callable[[], T],
    place: Place | None = None,
) -> T:
    """Write every part of `paths` (in its order; a part is a file, or a piece of one)
    with `write`, those in `child` in a forked child when `can_fork()`, while `work` runs
    here; `work`'s result once every file is in place (`place`: by default, renamed to its
    path). The first part (in order) that cannot be written raises its error, after the
    parts before it are in place and nothing else is left."""
    with _temporaries(paths) as (temps, failure):
        forked = [name for name in temps if name in child] if can_fork() else []
        finished: dict[str, bool] = {}
        with _child(forked, temps, write) as child_finished:
            outcome = _attempt(work)
            errors = _write_own(temps, write, skip=set(forked), finished=finished)
        finished |= child_finished
        _settle(paths, temps, write, finished, errors, place or _renamer(paths))
        if failure is not None:
            raise failure
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def _attempt(work: Callable[[], T]) -> T | Exception:
    """`work()`, or its exception: raised only after the files (their error comes first,
    as when the recap is printed after the files are written)."""
    try:
        return work()
    except Exception as exc:
        return exc


@contextlib.contextmanager
def _temporaries(
    paths: Mapping[str, Path],
) -> Iterator[tuple[dict[str, Path], OSError | None]]:
    """A temporary file beside each path, made in order (the first that cannot be made
    stops there: the formats before it are still written); every one left is removed."""
    temps: dict[str, Path] = {}
    failure: OSError | None = None
    try:
        for name, path in paths.items():
            try:
                fd, made = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            except OSError as exc:
                failure = exc
                break
            temps[name] = Path(made)  # first: removed whatever happens next
            os.close(fd)
        yield temps, failure
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)  # renamed ones are gone already


def _write_own(
    temps: Mapping[str, Path], write: Write, *, skip: Collection[str], finished: dict[str, bool]
) -> dict[str, Exception]:
    """Write, here, every part not in `skip`, in order, up to the first that fails."""
    for name, temp in temps.items():
        if name in skip:
            continue
        try:
            finished[name] = _write_one(name, temp, write)
        except Exception as exc:
            return {name: exc}  # the parts after it are never needed
    return {}


def _settle(
    paths: Mapping[str, Path],
    temps: dict[str, Path],
    write: Write,
    finished: dict[str, bool],
    errors: Mapping[str, Exception],
    place: Place,
) -> None:
    """Put each part in place, in order; one not yet written is written here first (its
    error, if any, is raised: the parts after it are left out, as they would be)."""
    for name in list(paths):
        if name not in temps:
            continue  # its temporary file was never made (its error follows) or is placed
        if name in errors:
            raise errors[name]
        if name not in finished:
            finished[name] = _write_one(name, temps[name], write)
        place(name, temps, finished)


def _renamer(paths: Mapping[str, Path]) -> Place:
    def rename(name: str, temps: dict[str, Path], _: Mapping[str, bool]) -> None:
        os.replace(temps.pop(name), paths[name])

    return rename


def _write_one(name: str, temp: Path, write: Write) -> bool:
    with open(temp, "w", encoding="utf-8", newline="\n") as handle:
        return write(name, handle)


@contextlib.contextmanager
def _child(names: list[str], temps: Mapping[str, Path], write: Write) -> Iterator[dict[str, bool]]:
    """A forked child writing `names` (nothing forked when empty); what it yields holds,
    once the block is left, the parts the child finished (and what their writer returned).
    Leaving the block by an exception ends the child (SIGKILL) and waits for it."""
    finished: dict[str, bool] = {}
    if not names:
        yield finished
        return
    read_end, write_end = os.pipe()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        pid = os.fork()
    except OSError:  # no process to be had (EAGAIN, ENOMEM): this process writes it all
        pid = -1
    if pid == 0:  # the child: never leaves this branch but by os._exit
        try:
            os.close(read_end)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            _child_writes(names, temps, write, write_end)
        finally:
            os._exit(0)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.close(write_end)
    if pid < 0:
        os.close(read_end)
        yield finished  # nothing finished: `_settle` writes the child's parts here
        return
    try:
        yield finished
    except BaseException:
        os.close(read_end)
        _end(pid)
        raise
    finished.update(_collect(pid, read_end))


def _child_writes(names: list[str], temps: Mapping[str, Path], write: Write, out: int) -> None:
    """The child's part: each of `names` written, its name and its writer's answer sent
    once it is (a line each); at the first that fails the child stops (the parent writes
    it and what follows). Should the run die while the child writes (SIGKILL), the child removes
    every temporary file, the run's included, rather than leave them (a run killed
    after the child's last part leaves its own, as a killed writer always did)."""
    parent = os.getppid()
    for name in names:
        try:
            answer = _write_one(name, temps[name], write)
        except BaseException:
            return
        try:
            if os.getppid() != parent:  # the run was killed: nobody will place or remove them
                raise BrokenPipeError
            os.write(out, f"{name} {int(answer)}\n".encode())
        except OSError:  # the run is gone (or leaving, and removes them too)
            _remove(temps)
            return


def _remove(temps: Mapping[str, Path]) -> None:
    for temp in temps.values():
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)


def _collect(pid: int, read_end: int) -> dict[str, bool]:
    """The parts the child reported, read to the end; then the child is waited for."""
    chunks: list[bytes] = []
    try:
        with os.fdopen(read_end, "rb") as pipe:
            chunks.append(pipe.read())
    finally:
        os.waitpid(pid, 0)
    lines = b"".join(chunks).decode().split("\n")[:-1]  # whole lines: a cut one is unfinished
    return {name: answer == "1" for name, answer in (line.split(" ") for line in lines)}


def _end(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
