"""A target's life as time segments, derived from its transitions (for report.html).

Each transition opens a segment in its state that lasts until the next transition; the
segment's kind is what the target was doing then. The last segment ends at the last DONE
transition (or the row's `finished_at`, or the run's end for a target still in flight).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.ledger.records import TargetRow, Transition

# What a target is doing while in a state; PENDING and DONE draw nothing.
SEGMENT_KIND: dict[TargetState, str] = {
    TargetState.INTENT: "attempt",
    TargetState.SUBMITTED: "job",
    TargetState.UNCERTAIN: "settle",
    TargetState.WAITING: "waiting",
    TargetState.VERIFYING: "verify",
}


@dataclass(frozen=True)
class Segment:
    kind: str  # a SEGMENT_KIND value
    start: float  # unix time
    end: float
    attempt: int
    event: str  # the transition that opened it


@dataclass(frozen=True)
class Lane:
    """One target's row in the timeline."""

    row: TargetRow
    segments: tuple[Segment, ...]
    end: float | None  # when the outcome was reached (the marker), if it was


def transitions_by_target(transitions: Iterable[Transition]) -> dict[TargetKey, list[Transition]]:
    """Each target's transitions in time order."""
    grouped: dict[TargetKey, list[Transition]] = defaultdict(list)
    for transition in transitions:
        grouped[transition.key].append(transition)
    for items in grouped.values():
        items.sort(key=_at)
    return grouped


_at = attrgetter("at")


def build_lane(row: TargetRow, transitions: Sequence[Transition], run_end: float) -> Lane:
    """The segments of one target; `run_end` closes a segment that never ended."""
    # The last DONE: a target aborted by an interrupt is DONE twice once `resume` rekeyed it.
    dones = [t.at for t in transitions if t.state is TargetState.DONE]
    done_at = dones[-1] if dones else None
    end = done_at if done_at is not None else row.finished_at
    segments = []
    for index, current in enumerate(transitions):
        kind = SEGMENT_KIND.get(current.state)
        if kind is None:
            continue
        following = transitions[index + 1] if index + 1 < len(transitions) else None
        stop = following.at if following is not None else (end or run_end)
        segments.append(
            Segment(kind, current.at, max(stop, current.at), current.attempt, current.event)
        )
    return Lane(row=row, segments=tuple(segments), end=end)


def time_bounds(
    start: float, rows: Iterable[TargetRow], transitions: Iterable[Transition], end: float | None
) -> tuple[float, float]:
    """The time axis of a run: from its start to the last thing that happened in it."""
    times = [start]
    times += [t.at for t in transitions]
    times += [r.finished_at for r in rows if r.finished_at is not None]
    last = max([*times, end or start])
    return start, max(last, start + 1.0)  # at least one second: the axis needs a width
