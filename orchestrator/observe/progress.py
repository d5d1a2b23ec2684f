"""Progress of a run: a live rich display on a terminal, plain lines anywhere else.

The engine calls a `ProgressView` (`start`, `wave_started`, `target_finished`,
`retry_scheduled`, `stop`); `make_progress` picks the implementation from the console.
On a terminal, rich's Live redirects stdout/stderr so log lines (the logging handler writes
to the *current* `sys.stderr`, see `observe.logging`) scroll above the display. Off a
terminal (CI, a pipe, `| tee`), nothing is animated: a line per wave, then a line every
`PLAIN_STEP_PERCENT` or `PLAIN_INTERVAL_S`, whichever comes first.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Protocol

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from orchestrator.observe.recap import OUTCOME_STYLES
from orchestrator.observe.text import plural

PLAIN_STEP_PERCENT = 10
PLAIN_INTERVAL_S = 10.0
LIVE_REFRESH_PER_S = 4


class ProgressView(Protocol):
    """What the engine tells the operator's screen while a run goes on."""

    def start(self, total: int, clusters: int, wave_sizes: Sequence[int]) -> None: ...
    def targets_added(self, count: int) -> None: ...
    def wave_started(self, index: int, size: int) -> None: ...
    def target_finished(self, outcome: str) -> None: ...
    def retry_scheduled(self) -> None: ...
    def stop(self) -> None: ...


def make_progress(console: Console) -> ProgressView:
    """A live display when `console` is an interactive terminal, plain lines otherwise."""
    if console.is_terminal and not console.is_dumb_terminal:
        return LiveProgress(console)
    return PlainProgress(console)


class _Tally:
    """Counts shared by both views."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.retries = 0
        self.waves: list[int] = []
        self.outcomes: Counter[str] = Counter()

    def counts_text(self) -> str:
        """`failed 1, rekeyed 30, retries 5`: retries as the recap counts them (attempts
        after the first, see `summary.retries`)."""
        parts = [f"{name} {count}" for name, count in sorted(self.outcomes.items())]
        parts.append(f"retries {self.retries}")
        return ", ".join(parts)


class PlainProgress:
    """Non-animated progress: whole lines, no cursor movement, no colour."""

    def __init__(self, console: Console, clock: Callable[[], float] = time.monotonic) -> None:
        self._console = console
        self._clock = clock
        self._tally = _Tally()
        self._started = 0.0
        self._last_line = 0.0
        self._last_step = 0
        self._shown: tuple[int, int] | None = None  # (done, total) of the last status line

    def start(self, total: int, clusters: int, wave_sizes: Sequence[int]) -> None:
        """Announce the run's size and its waves (none: an overlapped run, whose targets
        are counted as their clusters are discovered)."""
        self._tally.total, self._tally.waves = total, list(wave_sizes)
        self._started = self._last_line = self._clock()
        if not wave_sizes:
            self._line(f"progress: {plural(clusters, 'cluster')}, each rotated as it answers")
            return
        waves = ", ".join(str(size) for size in wave_sizes)
        where = f"{plural(total, 'target')} on {plural(clusters, 'cluster')}"
        self._line(f"progress: {where}, waves [{waves}]")

    def targets_added(self, count: int) -> None:
        """More targets to rotate (an overlapped run's next cluster)."""
        self._tally.total += count

    def wave_started(self, index: int, size: int) -> None:
        """One line per wave (none for an overlapped run's one wave)."""
        if not self._tally.waves:
            return
        of = len(self._tally.waves)
        self._line(f"progress: wave {index + 1}/{of} started: {plural(size, 'target')}")

    def target_finished(self, outcome: str) -> None:
        """Count it; print when a step of PLAIN_STEP_PERCENT or PLAIN_INTERVAL_S has passed."""
        self._tally.done += 1
        self._tally.outcomes[outcome] += 1
        step = self._tally.done * 100 // max(self._tally.total, 1) // PLAIN_STEP_PERCENT
        now = self._clock()
        if step > self._last_step or now - self._last_line >= PLAIN_INTERVAL_S:
            self._last_step = step
            self._status_line()

    def retry_scheduled(self) -> None:
        """Count a retry (shown in the next line)."""
        self._tally.retries += 1

    def stop(self) -> None:
        """A last status line, unless the last one already said it all."""
        if self._shown != (self._tally.done, self._tally.total):
            self._status_line()

    def _status_line(self) -> None:
        tally = self._tally
        percent = tally.done * 100 // max(tally.total, 1)
        elapsed = self._clock() - self._started
        self._line(
            f"progress: {tally.done}/{tally.total} ({percent}%) in {elapsed:.0f}s: "
            f"{tally.counts_text()}"
        )
        self._last_line = self._clock()
        self._shown = (tally.done, tally.total)

    def _line(self, text: str) -> None:
        # markup/highlight off: a plain line must never gain escape codes or lose brackets.
        self._console.print(text, markup=False, highlight=False, soft_wrap=True)


class _RateColumn(ProgressColumn):
    """Targets per minute (rich's speed columns speak bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-/min" if speed is None else f"{speed * 60:.0f}/min", style="cyan")


class LiveProgress:
    """A rich Live display: overall bar, current wave bar, counts; logs scroll above it."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._tally = _Tally()
        self._progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            MofNCompleteColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
        )
        self._overall: TaskID | None = None
        self._wave: TaskID | None = None
        self._live = Live(
            self, console=console, refresh_per_second=LIVE_REFRESH_PER_S,
            redirect_stdout=True, redirect_stderr=True, transient=False,
        )  # fmt: skip

    def __rich__(self) -> RenderableType:
        return Group(self._progress, self._counts())

    def start(self, total: int, clusters: int, wave_sizes: Sequence[int]) -> None:
        """Open the display."""
        self._tally.total, self._tally.waves = total, list(wave_sizes)
        self._overall = self._progress.add_task(plural(clusters, "cluster"), total=total)
        self._live.start()

    def targets_added(self, count: int) -> None:
        """Lengthen both bars (an overlapped run's next cluster)."""
        self._tally.total += count
        for task in (self._overall, self._wave):
            if task is not None:
                self._progress.update(task, total=self._tally.total)

    def wave_started(self, index: int, size: int) -> None:
        """Replace the wave bar with the new wave's."""
        if self._wave is not None:
            self._progress.remove_task(self._wave)
        label = f"wave {index + 1}/{len(self._tally.waves) or '?'}"
        self._wave = self._progress.add_task(label, total=size)

    def target_finished(self, outcome: str) -> None:
        """Advance both bars and count the outcome."""
        self._tally.done += 1
        self._tally.outcomes[outcome] += 1
        for task in (self._overall, self._wave):
            if task is not None:
                self._progress.advance(task)

    def retry_scheduled(self) -> None:
        """Count a retry."""
        self._tally.retries += 1

    def stop(self) -> None:
        """Draw the final state and release the terminal."""
        self._live.stop()

    def _counts(self) -> Text:
        text = Text()
        for name, count in sorted(self._tally.outcomes.items()):
            text.append(f"{name} {count}  ", style=OUTCOME_STYLES.get(name, ""))
        text.append(f"retries {self._tally.retries}", style="yellow")
        return text
