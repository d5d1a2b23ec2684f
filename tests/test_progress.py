"""Progress: a live display on a terminal, plain non-animated lines elsewhere."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from orchestrator.observe.progress import LiveProgress, PlainProgress, make_progress

ANSI = re.compile(r"\x1b\[|\x1b\]|\r")


class FakeClock:
    """Monotonic time that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plain(clock: FakeClock | None = None) -> tuple[PlainProgress, io.StringIO]:
    out = io.StringIO()
    return PlainProgress(Console(file=out, width=200), clock or FakeClock()), out


def test_make_progress_picks_plain_off_a_terminal() -> None:
    """A console that is not a terminal gets the plain view; a terminal the live one."""
    assert isinstance(make_progress(Console(file=io.StringIO())), PlainProgress)
    tty = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(make_progress(tty), LiveProgress)


def test_plain_output_has_one_line_per_wave_and_a_line_per_ten_percent() -> None:
    """20 targets: a start line, a line per wave, a line at each 10 % step, no ANSI."""
    view, out = plain()
    view.start(20, 3, [1, 2, 17])
    view.wave_started(0, 1)
    view.target_finished("rekeyed")
    view.wave_started(1, 2)
    view.retry_scheduled()
    for _ in range(19):
        view.target_finished("failed")
    view.stop()
    text = out.getvalue()
    assert not ANSI.search(text)
    lines = text.splitlines()
    assert lines[0] == "progress: 20 targets on 3 clusters, waves [1, 2, 17]"
    assert "progress: wave 1/3 started: 1 target" in lines
    assert "progress: wave 2/3 started: 2 targets" in lines
    status = [line for line in lines if re.match(r"progress: \d+/20", line)]
    assert len(status) == 10  # 10 %, 20 %, ..., 100 %; stop adds nothing at 100 %
    assert status[-1] == "progress: 20/20 (100%) in 0s: failed 19, rekeyed 1, retries 1"


def test_plain_prints_every_interval_when_progress_is_slow() -> None:
    """With 1000 targets, a status line still appears after PLAIN_INTERVAL_S."""
    clock = FakeClock()
    view, out = plain(clock)
    view.start(1000, 1, [1000])
    view.target_finished("rekeyed")
    assert "progress: 1/1000" not in out.getvalue()
    clock.now += 10.0
    view.target_finished("rekeyed")
    assert "progress: 2/1000 (0%) in 10s: rekeyed 2, retries 0" in out.getvalue()


def test_plain_stop_reports_an_unfinished_run() -> None:
    """An interrupted run still ends with a status line showing where it stopped."""
    view, out = plain()
    view.start(50, 2, [1, 49])
    view.target_finished("aborted")
    view.stop()
    assert out.getvalue().splitlines()[-1].startswith("progress: 1/50 (2%)")


def test_plain_keeps_brackets_and_never_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Markup-looking text (`[1, 2]`) is printed as is, even on a colour-capable console."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = io.StringIO()
    view = PlainProgress(Console(file=out, color_system="truecolor", width=200), FakeClock())
    view.start(2, 1, [1, 1])
    assert "[1, 1]" in out.getvalue()
    assert not ANSI.search(out.getvalue())


def test_live_view_counts_and_shows_logs_above(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live display ends with the counts; stderr written meanwhile appears above it."""
    import sys

    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    view = make_progress(Console(file=out, force_terminal=True, width=120))
    view.start(3, 2, [1, 2])
    view.wave_started(0, 1)
    print("a log line", file=sys.stderr)  # Live redirects stderr to print above itself
    view.target_finished("rekeyed")
    view.wave_started(1, 2)
    view.retry_scheduled()
    view.target_finished("failed")
    view.target_finished("rekeyed")
    view.stop()
    text = out.getvalue()
    assert "a log line" in text
    assert "failed 1  rekeyed 2  retries 1" in text
    assert "3/3" in text
    assert "wave 2/2" in text


def test_plain_lines_say_one_target_on_one_cluster() -> None:
    """Singular nouns for one: never "1 targets" or "on 1 clusters"."""
    view, out = plain()
    view.start(1, 1, [1])
    view.wave_started(0, 1)
    text = out.getvalue()
    assert "progress: 1 target on 1 cluster, waves [1]" in text
    assert "started: 1 target\n" in text


def test_plain_progress_counts_the_targets_of_each_cluster_as_it_comes() -> None:
    """An overlapped run starts with no targets and no waves; each cluster adds its own,
    and the last line says all of them done."""
    view, out = plain()
    view.start(0, 2, [])
    view.wave_started(0, 0)
    for _ in range(2):
        view.targets_added(3)
        for _ in range(3):
            view.target_finished("rekeyed")
    view.stop()
    lines = out.getvalue().splitlines()
    assert lines[0] == "progress: 2 clusters, each rotated as it answers"
    assert lines[-1].startswith("progress: 6/6 (100%)")
    assert not any("wave" in line for line in lines)
