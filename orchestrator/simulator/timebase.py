"""One clock for the whole simulation, injectable for tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]


class Timebase:
    """Monotonic time for behaviour, plus wall-clock ISO-8601 stamps for ONTAP fields."""

    def __init__(self, clock: Clock = time.monotonic, *, skew_s: float = 0.0) -> None:
        self.skew_s = skew_s  # the simulated clusters' wall clock runs this far ahead of ours
        self.use(clock)

    def use(self, clock: Clock) -> None:
        """Switch to another clock and restart the simulation's elapsed time."""
        self.clock = clock
        self.started_at = clock()
        self._wall_offset = time.time() - self.started_at + self.skew_s

    def now(self) -> float:
        """The current monotonic time."""
        return self.clock()

    def elapsed(self, now: float) -> float:
        """Seconds since the simulation (re)started."""
        return now - self.started_at

    def iso(self, moment: float) -> str:
        """An ISO-8601 timestamp (UTC, seconds) for a monotonic moment."""
        wall = datetime.fromtimestamp(moment + self._wall_offset, tz=UTC)
        return wall.isoformat(timespec="seconds")
