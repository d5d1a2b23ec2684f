"""Durations as people write them on a command line: `90d`, `12h`, `1h30m`, `45s`.

Pure: used by `--older-than` (history) and `--deadline` (run).
"""

from __future__ import annotations

import re

UNIT_SECONDS: dict[str, int] = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
"""The units, largest first; each may appear once, in this order."""

_DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> float:
    """Seconds in `text`: whole numbers with units w, d, h, m, s, largest first.

    `90d`, `12h`, `30m`, `45s`, `1h30m`, `2w`; case and surrounding blanks are ignored.
    Raises ValueError saying what is expected.
    """
    cleaned = text.strip().lower()
    match = _DURATION.fullmatch(cleaned)
    if not cleaned or match is None:
        raise ValueError(
            f"invalid duration {text!r}: expected a number with a unit, largest unit "
            "first (w, d, h, m, s), e.g. 90d, 12h, 1h30m, 45s"
        )
    amounts = (int(group or 0) for group in match.groups())
    return float(
        sum(amount * unit for amount, unit in zip(amounts, UNIT_SECONDS.values(), strict=True))
    )


def format_duration(seconds: float) -> str:
    """A short human form, the two largest non-zero units: `93d 4h`, `5m 2s`, `0s`."""
    remaining = max(0, int(seconds))
    parts: list[str] = []
    for unit, size in UNIT_SECONDS.items():
        if unit == "w":  # "13w 2d" reads worse than "93d" for an auditor
            continue
        amount, remaining = divmod(remaining, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2]) or "0s"
