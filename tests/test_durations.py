"""Durations on the command line: `90d`, `12h`, `1h30m`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90d", 90 * 86400),
        ("12h", 12 * 3600),
        ("30m", 1800),
        ("45s", 45),
        ("1h30m", 5400),
        ("2w", 14 * 86400),
        ("1d12h", 36 * 3600),
        (" 90D ", 90 * 86400),
        ("0s", 0),
    ],
)
def test_parses_amounts_with_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text", ["", "90", "d", "1.5h", "-1d", "1m1h", "1h 30m", "1h1h", "90 days"]
)
def test_rejects_anything_else_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid duration .*e\.g\. 90d, 12h, 1h30m"):
        parse_duration(text)


@given(
    st.integers(0, 60),
    st.integers(0, 400),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
)
def test_units_add_up(weeks: int, days: int, hours: int, minutes: int, seconds: int) -> None:
    text = f"{weeks}w{days}d{hours}h{minutes}m{seconds}s"
    expected = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (59.9, "59s"),
        (3600, "1h"),
        (5400, "1h 30m"),
        (93 * 86400 + 4 * 3600 + 5, "93d 4h"),
        (-5, "0s"),
    ],
)
def test_formats_the_two_largest_units(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(0, 10**9))
def test_formatting_drops_less_than_one_unit_below_the_largest(seconds: int) -> None:
    """`93d 4h` may hide minutes and seconds, never a whole hour."""
    text = format_duration(seconds)
    largest = text.split()[0][-1]
    below = {"d": 3600, "h": 60, "m": 1, "s": 1}[largest]
    assert 0 <= seconds - parse_duration(text.replace(" ", "")) < below
    assert len(text.split()) <= 2
