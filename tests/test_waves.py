"""Wave specs: parsing, sizes that add up, the canary first."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticValidationError

from orchestrator.commands.run import options_from_flags
from orchestrator.core.inventory import RunDefaults
from orchestrator.core.inventory_model import DefaultsModel
from orchestrator.core.options import DEFAULT_WAVES
from orchestrator.core.waves import WaveStep, parse_waves, wave_sizes
from orchestrator.errors import UserError


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


# -- one grammar: the inventory's `defaults: waves:` and `--waves` (issue 14) -------------

_piece = st.one_of(
    st.integers(min_value=-3, max_value=300).map(str),
    st.sampled_from(["12.5", "0.5", "1/3", "1e1", "ten", "", " ", "+2", "٣", "1_0", "2."]),
)
_step_text = st.tuples(_piece, st.sampled_from(["", "%", " %", "%%"])).map("".join)
wave_specs = st.lists(_step_text, min_size=0, max_size=5).map(",".join)


def _validate_accepts(spec: str) -> bool:
    try:
        DefaultsModel.model_validate({"waves": spec})
    except PydanticValidationError:
        return False
    return True


def _run_accepts(spec: str) -> bool:
    """What `run`/`plan` do with `--waves SPEC`: check the flag, then cut waves with it."""
    flags = dict.fromkeys(_RUN_FLAGS) | {"waves": spec}
    try:
        options = options_from_flags(flags, RunDefaults())
    except UserError:
        return False
    assert sum(wave_sizes(37, parse_waves(options.waves))) == 37  # no crash after discovery
    return True


_RUN_FLAGS = [
    "concurrency",
    "per_cluster",
    "waves",
    "max_fail_percent",
    "fail_fast",
    "return_timeout",
    "request_timeout",
    "discovery_timeout",
    "deadline",
    "emergency",
    "reason",
    "skip_not_ready",
]


@settings(max_examples=300)
@given(wave_specs)
def test_validate_accepts_exactly_the_specs_run_accepts(spec: str) -> None:
    """`validate` (the inventory model) and `run`/`plan` (`--waves`) agree on every spec."""
    assert _validate_accepts(spec) == _run_accepts(spec)


@pytest.mark.parametrize(("spec", "accepted"), [("100%,1", False), ("12.5%", True)])
def test_the_issue_14_specs(spec: str, accepted: bool) -> None:
    assert _validate_accepts(spec) is accepted
    assert _run_accepts(spec) is accepted
