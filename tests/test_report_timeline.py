"""report.html's lanes: `html._lane` draws `timeline.build_lane`'s segments.

`_lane` finds the segments as it draws them (no `Segment` or `Lane` object each) and
builds each tooltip from escaped pieces; the reference below is the drawing it replaced
(html.py at e3fec0e, over `build_lane`), kept as the oracle: the two write the same text
for random targets and transitions (every state, equal times, times out of order, DONE
twice, keys and events with characters to escape, a target never started).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.ledger.records import TargetRow, Transition
from orchestrator.observe.reports.html import (
    LABEL_W,
    LANE_H,
    OUTCOME_COLOURS,
    SEGMENT_COLOURS,
    _clip,
    _lane,
    escape,
)
from orchestrator.observe.reports.timeline import Lane, Segment, build_lane, transitions_by_target

_NAMES = st.text(alphabet=st.sampled_from(list("ab1-_ &<>\"'é")), min_size=1, max_size=8)
_TIMES = st.none() | st.floats(min_value=0, max_value=500, allow_nan=False)
_KEY = st.builds(TargetKey, _NAMES, _NAMES)


@st.composite
def _lanes(draw: st.DrawFn) -> tuple[TargetRow, list[Transition]]:
    key = draw(_KEY)
    row = TargetRow(
        "r1",
        key,
        outcome=draw(st.none() | st.sampled_from([*OUTCOME_COLOURS, "odd<"])),
        reason=draw(st.none() | _NAMES),
        started_at=draw(_TIMES),
        finished_at=draw(_TIMES),
    )
    steps = draw(
        st.lists(
            st.builds(
                Transition,
                st.just("r1"),
                st.just(key),
                st.floats(min_value=0, max_value=500, allow_nan=False),
                st.sampled_from(list(TargetState)),
                st.integers(min_value=0, max_value=4),
                _NAMES,
            ),
            max_size=8,
        )
    )
    return row, transitions_by_target(steps).get(key, [])


@settings(max_examples=500, deadline=None)
@given(
    _lanes(),
    st.integers(min_value=0, max_value=2000),
    st.floats(min_value=0, max_value=100, allow_nan=False),
    st.floats(min_value=0.01, max_value=50, allow_nan=False),
    st.floats(min_value=0, max_value=600, allow_nan=False),
)
def test_a_lane_is_the_reference_drawing_of_build_lane(
    lane: tuple[TargetRow, list[Transition]], y: int, start: float, scale: float, end: float
) -> None:
    row, steps = lane
    expected = "".join(_reference_lane(build_lane(row, steps, end), y, start, scale))
    assert _lane(row, steps, y, start, scale, end) == expected


# The drawing before it was fused (html.py at e3fec0e), unchanged.
def _reference_lane(lane: Lane, y: int, start: float, scale: float) -> list[str]:
    row = lane.row
    outcome = row.outcome or "pending"
    colour = OUTCOME_COLOURS.get(outcome, "#9e9e9e")
    label = f"{row.key.svm} · {outcome}" + (f" ({row.reason})" if row.reason else "")
    key = str(row.key)  # once a lane (a dataclass's __str__), escaped once
    shown_key = escape(key)
    parts = [
        f'<text x="4" y="{y + LANE_H - 3}">{escape(_clip(label, 30))}'
        f"<title>{shown_key}: {escape(label)}</title></text>"
    ]
    if row.started_at is not None:  # never started (skipped, aborted): a marker alone
        x0 = LABEL_W + (row.started_at - start) * scale
        x1 = LABEL_W + ((lane.end or row.started_at) - start) * scale
        parts.append(
            f'<rect class="lanebg" x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{LANE_H}" fill="{colour}"/>'
        )
    parts.extend(_reference_segment(key, segment, y, start, scale) for segment in lane.segments)
    if lane.end is not None:
        cx = LABEL_W + (lane.end - start) * scale
        shown = escape(outcome)
        parts.append(
            f'<circle class="outcome-{shown}" cx="{cx:.1f}" cy="{y + LANE_H / 2}" '
            f'r="4.5" fill="{colour}" stroke="#fff"><title>{shown_key}: '
            f"{shown}</title></circle>"
        )
    return parts


def _reference_segment(key: str, segment: Segment, y: int, start: float, scale: float) -> str:
    x = LABEL_W + (segment.start - start) * scale
    duration = segment.end - segment.start
    width = max(duration * scale, 1.5)  # an instant still shows a sliver
    tip = f"{key} {segment.kind} {duration:.1f} s (attempt {segment.attempt}, {segment.event})"
    return (
        f'<rect class="seg seg-{segment.kind}" x="{x:.1f}" y="{y + 2}" width="{width:.1f}" '
        f'height="{LANE_H - 4}" fill="{SEGMENT_COLOURS[segment.kind]}">'
        f"<title>{escape(tip)}</title></rect>"
    )
