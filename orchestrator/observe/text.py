"""Small wording helpers for what people read (progress, recap, reports)."""

from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """`1 target`, `2 targets`, `0 clusters` (the nouns used here all take an `s`)."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
