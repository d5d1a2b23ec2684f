"""Run exclusivity: an OS lock on the sidecar file `<db>.lock`.

`flock(2)` is held by an open file description, so the kernel drops it the moment the
holding process dies, SIGKILL included: a lock can never outlive its run, and no stale
lock file needs cleaning up. An ACTIVE run whose lock is free therefore crashed.

The lock file also names its holder (run id, pid, host) so a refusal can say who holds
it; that text is informational, the flock alone decides. The file is never deleted:
deleting a lock file races with a process that has just opened it.

Local filesystems only (so is SQLite's WAL mode): flock over NFS is not trustworthy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.core.backoff import WAITS, Purpose, next_delay
from orchestrator.errors import StateError

_WAIT = WAITS[Purpose.LOCK]
"""How long `acquire` retries a held lock before refusing, and `holder()` waits for a
name, and the pause between looks (`core/backoff.py`)."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds the run lock, as the holder wrote it into the lock file."""

    run_id: str
    pid: int
    host: str
    since: float  # unix time

    def describe(self) -> str:
        return f"run {self.run_id} (pid {self.pid} on {self.host})"


class RunLock:
    """The exclusive run lock of one ledger; one instance per `Ledger`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._holder: LockHolder | None = None

    @property
    def held(self) -> LockHolder | None:
        """This instance's own hold, if any."""
        return self._holder

    def acquire(self, run_id: str) -> None:
        """Take the lock for `run_id`, or raise StateError naming the run that holds it."""
        if self._holder is not None:
            if self._holder.run_id == run_id:
                return
            raise StateError(f"this process already holds the ledger for {self._holder.describe()}")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._lock_or_refuse(fd)
            holder = LockHolder(run_id, os.getpid(), socket.gethostname(), time.time())
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder.__dict__).encode(), 0)
        except BaseException:
            os.close(fd)  # closing drops the flock, if we got it
            raise
        self._fd, self._holder = fd, holder

    def release(self) -> None:
        """Drop the lock (a no-op when not held)."""
        if self._fd is None:
            return
        fd, self._fd, self._holder = self._fd, None, None
        # Blank the name before unlocking: once unlocked, the file belongs to the next holder.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)

    def holder(self) -> LockHolder | None:
        """Who holds the lock now (this instance included), or None when it is free."""
        if self._holder is not None:
            return self._holder
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            # A shared probe: it conflicts with a holder, not with another probe.
            if _try_flock(fd, fcntl.LOCK_SH):
                return None
            return _wait_for_name(fd) or LockHolder("?", 0, "?", 0.0)
        finally:
            os.close(fd)

    def _lock_or_refuse(self, fd: int) -> None:
        # Retry briefly even when the file names a run: the name may be stale (its holder
        # was killed) while a `holder()` probe holds the lock for an instant.
        deadline = time.monotonic() + _WAIT.within_s
        while not _try_flock(fd, fcntl.LOCK_EX):
            if time.monotonic() > deadline:
                raise StateError(self._refusal(_read_name(fd)))
            time.sleep(next_delay(_WAIT, 1))

    def _refusal(self, holder: LockHolder | None) -> str:
        if holder is None:
            return f"another process holds the ledger lock {self.path}"
        return (
            f"{holder.describe()} is in progress on this ledger: "
            "wait for it to finish, or stop it and `resume` it"
        )


def _try_flock(fd: int, operation: int) -> bool:
    try:
        fcntl.flock(fd, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_name(fd: int) -> LockHolder | None:
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
        return LockHolder(
            str(data["run_id"]), int(data["pid"]), str(data["host"]), float(data["since"])
        )
    except (ValueError, TypeError, KeyError):
        return None


def _wait_for_name(fd: int) -> LockHolder | None:
    """The holder's name; a brand-new holder may not have written it yet."""
    deadline = time.monotonic() + _WAIT.within_s
    while (holder := _read_name(fd)) is None and time.monotonic() < deadline:
        time.sleep(next_delay(_WAIT, 1))
    return holder
