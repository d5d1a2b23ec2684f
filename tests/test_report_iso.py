"""report.json's times: `document.iso` is `datetime.isoformat` byte for byte.

`iso` rounds the microseconds itself (half to even, as `datetime.fromtimestamp` does) and
makes each whole second's text once; these hold it to the standard library's text on the
edges where a hand-made rounding goes wrong (a carry into the next second, halves,
negative times) and on random times.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.observe.reports import document


def _standard(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


EDGES = [
    0.0,
    -0.0,
    1.9999996,  # rounds up into the next second
    1.9999995,
    1.0000005,  # exactly half a microsecond: to even
    1.0000015,
    2.5e-6,
    -1.5,
    -0.0000004,
    -0.0000005,
    -0.0000006,
    1e9 + 0.0005,
    1e9 + 0.9995,
    1e9 + 0.99949999,
    1796167356.61725,
    253402300799.9,  # the last second datetime can show
]


def test_iso_equals_the_standard_text_on_the_edges() -> None:
    for timestamp in EDGES:
        assert document.iso(timestamp) == _standard(timestamp), timestamp


@given(st.floats(min_value=-1e10, max_value=2.5e11, allow_nan=False))
def test_iso_equals_the_standard_text_on_random_times(timestamp: float) -> None:
    assert document.iso(timestamp) == _standard(timestamp)


@given(st.integers(min_value=0, max_value=2**33), st.integers(min_value=0, max_value=999_999))
def test_iso_equals_the_standard_text_on_whole_microseconds(seconds: int, micros: int) -> None:
    timestamp = seconds + micros / 1e6
    assert math.isfinite(timestamp)
    assert document.iso(timestamp) == _standard(timestamp)


def test_iso_keeps_none() -> None:
    assert document.iso(None) is None
