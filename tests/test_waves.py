"""Wave specs: parsing, sizes that add up, the canary first."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.core.options import DEFAULT_WAVES
from orchestrator.core.waves import WaveStep, parse_waves, wave_sizes


def test_default_spec_starts_with_a_canary_of_one() -> None:
    """`1,10%,100%`: one target, then 10 % of the rest (rounded up), then the rest."""
    steps = parse_waves(DEFAULT_WAVES)
    assert wave_sizes(200, steps) == [1, 20, 179]
    assert wave_sizes(1, steps) == [1]
    assert wave_sizes(2, steps) == [1, 1]
    assert wave_sizes(0, steps) == []


def test_parse_steps() -> None:
    """Counts and percentages, spaces allowed, decimals in percentages."""
    assert parse_waves(" 5, 12.5% ,100%") == (
        WaveStep(count=5),
        WaveStep(percent=Fraction(25, 2)),
        WaveStep(percent=Fraction(100)),
    )


def test_last_step_takes_everything_left() -> None:
    """`1,10%` still covers every target: the last step takes the rest."""
    assert wave_sizes(100, parse_waves("1,10%")) == [1, 99]
    assert wave_sizes(100, parse_waves("5")) == [100]


def test_percent_is_of_the_remaining_targets_at_least_one() -> None:
    """1% of 9 remaining is rounded up to 1."""
    assert wave_sizes(10, parse_waves("1,1%,100%")) == [1, 1, 8]


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "empty"),
        ("1,,100%", "empty"),
        ("0", ">= 1"),
        ("abc", "neither"),
        ("150%", "at most 100%"),
        ("0%", "above 0%"),
        ("1.5", "whole number"),
        ("-2", ">= 1"),
        ("100%,1", "put it last"),
        ("1/3%", "neither"),
        ("1e1", "neither"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, fragment: str) -> None:
    """Bad specs raise ValueError naming the spec and the problem."""
    with pytest.raises(ValueError, match="invalid waves") as info:
        parse_waves(spec)
    assert fragment in str(info.value)


step = st.one_of(
    st.integers(min_value=1, max_value=500).map(lambda n: WaveStep(count=n)),
    st.fractions(min_value=Fraction(1, 100), max_value=100).map(lambda p: WaveStep(percent=p)),
)


@given(st.integers(min_value=0, max_value=5000), st.lists(step, min_size=0, max_size=8))
def test_sizes_add_up_and_no_wave_is_empty(total: int, steps: list[WaveStep]) -> None:
    """Every target is in exactly one wave, and no wave is empty."""
    sizes = wave_sizes(total, steps)
    assert sum(sizes) == total
    assert all(size >= 1 for size in sizes)
    assert len(sizes) <= max(1, len(steps))


@given(st.lists(st.sampled_from(["1", "3", "10%", "33.3%", "50%"]), max_size=5))
def test_parse_round_trips_to_sizes(parts: list[str]) -> None:
    """Any valid spec parses and yields sizes for any total."""
    steps = parse_waves(",".join([*parts, "100%"]))
    assert sum(wave_sizes(37, steps)) == 37
