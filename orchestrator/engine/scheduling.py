"""The order targets start in, and how they are cut into waves."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from itertools import chain, zip_longest

from orchestrator.core.readiness import NOT_READY_FACT
from orchestrator.core.waves import parse_waves, wave_sizes
from orchestrator.ledger.records import TargetRow


def order_rows(rows: Sequence[TargetRow], *, emergency: bool) -> list[TargetRow]:
    """Ready targets first, then those discovery found not ready (the plan's verdict): a
    not-ready target never leads the canary or a wave while a ready one waits. Within each,
    priority first (higher first), then name; a normal run also interleaves clusters so
    the canary and the early waves touch many clusters a little, not one cluster a lot."""
    ready = [row for row in rows if NOT_READY_FACT not in row.facts]
    not_ready = [row for row in rows if NOT_READY_FACT in row.facts]
    return _ranked(ready, emergency) + _ranked(not_ready, emergency)


def _ranked(rows: Sequence[TargetRow], emergency: bool) -> list[TargetRow]:
    ranked = sorted(rows, key=lambda row: (-row.priority, row.key))
    if emergency:
        return ranked
    per_cluster: dict[str, list[TargetRow]] = defaultdict(list)
    for row in ranked:
        per_cluster[row.key.cluster].append(row)
    rounds = zip_longest(*per_cluster.values())
    return [row for row in chain.from_iterable(rounds) if row is not None]


def cut_waves(rows: Sequence[TargetRow], spec: str) -> list[list[TargetRow]]:
    """Split ordered rows into waves per `--waves` (e.g. `1,10%,100%`)."""
    if not rows:
        return []
    sizes = wave_sizes(len(rows), parse_waves(spec))
    waves, start = [], 0
    for size in sizes:
        waves.append(list(rows[start : start + size]))
        start += size
    return waves
