"""Wave arithmetic for `--waves SPEC` (default `1,10%,100%`): pure.

A spec is a comma-separated list of steps. A number N is a wave of N targets; a
percentage P is P % of the targets not yet in a wave at that point, rounded up, at least
one. The last step always takes every target left, so `1,10%` still covers all targets
(a canary of one, then everything else), and a spec can never leave targets out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

_DECIMAL = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class WaveStep:
    """One step of a wave spec: a fixed `count`, or a `percent` of the remaining targets."""

    count: int | None = None
    percent: Fraction | None = None

    def size(self, remaining: int) -> int:
        """How many of `remaining` targets this step takes (at least 1 when any remain)."""
        if remaining <= 0:
            return 0
        if self.count is not None:
            return min(self.count, remaining)
        share = math.ceil(remaining * (self.percent or Fraction(100)) / 100)
        return min(remaining, max(1, share))

    def __str__(self) -> str:
        return str(self.count) if self.count is not None else f"{float(self.percent or 0):g}%"


class WaveSpecError(ValueError):
    """A wave spec that is not valid: `spec` as given and `problem`, worded for the user."""

    def __init__(self, spec: str, problem: str) -> None:
        self.spec = spec
        self.problem = problem
        super().__init__(f"invalid waves {spec!r}: {problem}")


def parse_waves(spec: str) -> tuple[WaveStep, ...]:
    """Parse `1,10%,100%`-style specs; WaveSpecError says what is wrong and what is expected.

    The one grammar of wave specs: `run`, `plan` and the inventory's `defaults: waves:`
    all parse with this function, so `validate` accepts exactly what `run` accepts.
    """
    items = [item.strip() for item in spec.split(",")]
    if not spec.strip() or any(not item for item in items):
        raise WaveSpecError(spec, "empty step (expected steps like 1,10%,100%)")
    steps = tuple(_parse_step(spec, item) for item in items)
    for step in steps[:-1]:
        if step.percent == 100:
            raise WaveSpecError(spec, "'100%' takes every target left: put it last")
    return steps


def _parse_step(spec: str, item: str) -> WaveStep:
    text = item.removesuffix("%").strip()
    value = _number(text)
    if value is None:
        raise WaveSpecError(
            spec, f"{item!r} is neither a count (e.g. 5) nor a percentage (e.g. 10%)"
        )
    if item.endswith("%"):
        if not 0 < value <= 100:
            raise WaveSpecError(spec, f"{item!r} must be above 0% and at most 100%")
        return WaveStep(percent=value)
    if value.denominator != 1 or value < 1:
        raise WaveSpecError(spec, f"{item!r} must be a whole number of targets, >= 1")
    return WaveStep(count=int(value))


def _number(text: str) -> Fraction | None:
    """A plain decimal number (`5`, `12.5`); None for anything else.

    Fraction() alone would also take `1/3`, `1e3`, `_1` or non-ASCII digits: not
    something an administrator writes, and not worth a second meaning."""
    if not _DECIMAL.fullmatch(text):
        return None
    return Fraction(text)


def wave_sizes(total: int, steps: Sequence[WaveStep]) -> list[int]:
    """The size of each wave for `total` targets: no empty wave, and they sum to `total`.

    Steps beyond the targets are dropped; the last step takes all that is left.
    """
    sizes: list[int] = []
    remaining = max(0, total)
    if not steps:  # no spec at all: one wave (parse_waves never returns this)
        return [remaining] if remaining else []
    for index, step in enumerate(steps):
        if remaining == 0:
            break
        size = remaining if index == len(steps) - 1 else step.size(remaining)
        sizes.append(size)
        remaining -= size
    return sizes
