"""`history`: per target, the last confirmed rotation across every run in the ledger.

Which targets are listed:
- without an inventory, every target some run rekeyed (filtered by cluster/SVM globs and
  `--targets`; tags live in the inventory, so `--tag` needs one);
- with an inventory, its fleet: the SVMs it names (and `cluster/-` with
  `include_cluster_scope`), and for `svms: all` clusters every target of that cluster any
  run ever recorded. Targets of the fleet no run rekeyed are listed as never rotated;
  targets the inventory no longer holds are left out. A `svms: all` cluster that no run
  or plan has discovered yet is listed as `cluster/*`, never rotated (not discovered yet:
  run plan), so an auditor's count of overdue targets cannot miss it.

A rotation is a target whose outcome was `rekeyed` (confirmed by the read-back) in a run
that was not a plan; `unverified` does not count. ONTAP has two rotations (issue 15): each
entry carries the last rekey-external and the last rekey-internal; its status (and
`--older-than`) judges the one `history --rekey` names (external by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from orchestrator.core.durations import format_duration
from orchestrator.core.inventory import ClusterSpec, Inventory
from orchestrator.core.providers import Operation
from orchestrator.core.selectors import (
    WHOLE_CLUSTER,
    Selection,
    cluster_excluded,
    cluster_may_match,
    inventory_targets,
    listed,
    passes,
    svm_excluded,
    target_matches,
)
from orchestrator.core.targets import CLUSTER_SCOPE, TargetKey
from orchestrator.ledger.store import Ledger, Rotation

NOT_DISCOVERED = "not discovered yet: run plan"
"""The note of a `svms: all` cluster no run or plan has discovered (its SVMs are unknown)."""

HISTORY_SCHEMA = "ontap-rekey/history/v1"


class RotationStatus(StrEnum):
    OK = "ok"  # rotated, and within the threshold if there is one
    OVERDUE = "overdue"  # the last rotation is older than the threshold
    NEVER_ROTATED = "never_rotated"  # in the fleet, but no run ever rekeyed it


@dataclass(frozen=True)
class HistoryEntry:
    key: TargetKey
    rotation: Rotation | None  # the last rotation of the judged operation
    age_s: float | None  # seconds since the last rotation
    status: RotationStatus
    note: str | None = None  # NOT_DISCOVERED for a `cluster/*` entry
    other: Rotation | None = None  # the last rotation of the other operation

    def last(self, operation: Operation) -> Rotation | None:
        """The last rotation of `operation` (external or internal)."""
        if self.rotation is not None and self.rotation.operation is operation:
            return self.rotation
        if self.other is not None and self.other.operation is operation:
            return self.other
        return None

    @property
    def provider(self) -> str | None:
        """The target's key manager, as its last rotation (of either kind) recorded it."""
        latest = max(
            (r for r in (self.rotation, self.other) if r is not None),
            key=lambda r: r.at,
            default=None,
        )
        return latest.provider if latest is not None else None


@dataclass(frozen=True)
class History:
    entries: tuple[HistoryEntry, ...]
    generated_at: float  # unix time
    older_than_s: float | None  # the threshold, when one was given
    operation: Operation = Operation.EXTERNAL  # the rotation the statuses judge

    def count(self, status: RotationStatus) -> int:
        return sum(1 for entry in self.entries if entry.status is status)

    @property
    def needs_attention(self) -> bool:
        """With a threshold: some target is overdue or never rotated (`history` exits 5)."""
        return self.older_than_s is not None and any(
            entry.status is not RotationStatus.OK for entry in self.entries
        )


def load_history(
    ledger: Ledger,
    *,
    selection: Selection,
    inventory: Inventory | None,
    older_than_s: float | None,
    now: float,
    operation: Operation = Operation.EXTERNAL,
) -> History:
    """The history of the selected targets (see the module docstring for which), judged
    on `operation`'s rotations; the other operation's last rotation rides along."""
    other = _other(operation)
    if inventory is None:
        where = partial(key_selected, selection)
        rotations = ledger.last_rotations(where, operation)
        others = ledger.last_rotations(where, other)
        return build_history(
            rotations,
            now=now,
            older_than_s=older_than_s,
            fleet=set(rotations) | set(others),
            others=others,
            operation=operation,
        )
    fleet = fleet_targets(inventory, ledger.seen_targets(), selection)
    rotations = ledger.last_rotations(fleet.__contains__, operation)
    others = ledger.last_rotations(fleet.__contains__, other)
    return build_history(
        rotations,
        fleet=fleet,
        now=now,
        older_than_s=older_than_s,
        others=others,
        operation=operation,
    )


def _other(operation: Operation) -> Operation:
    return Operation.INTERNAL if operation is Operation.EXTERNAL else Operation.EXTERNAL


def _note(key: TargetKey) -> str | None:
    return NOT_DISCOVERED if key.svm == WHOLE_CLUSTER else None


def build_history(
    rotations: Mapping[TargetKey, Rotation],
    *,
    now: float,
    older_than_s: float | None,
    fleet: Iterable[TargetKey] | None = None,
    others: Mapping[TargetKey, Rotation] | None = None,
    operation: Operation = Operation.EXTERNAL,
) -> History:
    """Entries for `fleet` (default: the rotated targets), sorted by target; `others`
    holds the other operation's last rotations."""
    keys = set(rotations) if fleet is None else set(fleet)
    others = others or {}
    entries = tuple(
        replace(
            _entry(key, rotations.get(key), now=now, older_than_s=older_than_s),
            other=others.get(key),
        )
        for key in sorted(keys)
    )
    return History(entries, now, older_than_s, operation)


def _entry(
    key: TargetKey, rotation: Rotation | None, *, now: float, older_than_s: float | None
) -> HistoryEntry:
    if rotation is None:
        return HistoryEntry(key, None, None, RotationStatus.NEVER_ROTATED, _note(key))
    age = max(0.0, now - rotation.at)
    overdue = older_than_s is not None and age > older_than_s
    return HistoryEntry(
        key, rotation, age, RotationStatus.OVERDUE if overdue else RotationStatus.OK
    )


def key_selected(selection: Selection, key: TargetKey) -> bool:
    """The selection without an inventory: globs, exclusions and `--targets`; no tags."""
    if not passes(selection.clusters, key.cluster) or not passes(selection.svms, key.svm):
        return False
    if cluster_excluded(selection, key.cluster) or svm_excluded(selection, key.cluster, key.svm):
        return False
    return selection.targets is None or listed(selection.targets, key.cluster, key.svm)


def fleet_targets(
    inventory: Inventory, seen: Iterable[TargetKey], selection: Selection
) -> set[TargetKey]:
    """The inventory's selected targets, `svms: all` clusters completed from the ledger."""
    seen_by_cluster: dict[str, set[str]] = {}
    for key in seen:
        seen_by_cluster.setdefault(key.cluster, set()).add(key.svm)
    fleet: set[TargetKey] = set()
    for spec in inventory.clusters:
        svms = _cluster_svms(spec, seen_by_cluster.get(spec.name, set()))
        fleet.update(
            TargetKey(spec.name, svm) for svm in svms if target_matches(selection, spec, svm)
        )
        if WHOLE_CLUSTER in svms and cluster_may_match(selection, spec):
            fleet.add(TargetKey(spec.name, WHOLE_CLUSTER))  # its SVMs may match: unknown
    return fleet


def _cluster_svms(spec: ClusterSpec, seen: set[str]) -> set[str]:
    # `svms: all`: the names are only known from discovery, so take what runs found (`*`:
    # a run that could not list them; none found: `*`, not discovered yet)
    found = seen - {CLUSTER_SCOPE, WHOLE_CLUSTER}
    return set(inventory_targets(spec, found or None))


# -- rendering ------------------------------------------------------------------------------


def iso_utc(at: float) -> str:
    """ISO-8601 UTC to the second: `2026-11-27T18:15:30Z`."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def history_json(history: History, *, ledger: str, inventory: str | None) -> dict[str, Any]:
    """The `--json` document (`"schema": "ontap-rekey/history/v1"`)."""
    return {
        "schema": HISTORY_SCHEMA,
        "generated_at": iso_utc(history.generated_at),
        "ledger": ledger,
        "inventory": inventory,
        "older_than_s": history.older_than_s,
        "operation": history.operation.value,
        "totals": {"targets": len(history.entries)}
        | {status.value: history.count(status) for status in RotationStatus},
        "targets": [_entry_json(entry) for entry in history.entries],
    }


def _entry_json(entry: HistoryEntry) -> dict[str, Any]:
    rotation = entry.rotation
    return {
        "target": str(entry.key),
        "cluster": entry.key.cluster,
        "svm": entry.key.svm,
        "status": entry.status.value,
        "rotated_at": iso_utc(rotation.at) if rotation else None,
        "age_s": round(entry.age_s, 3) if entry.age_s is not None else None,
        "run_id": rotation.run_id if rotation else None,
        "key_id": rotation.key_id if rotation else None,
        "provider": entry.provider,
        "operation": rotation.operation.value if rotation else None,
        "last_external": _rotation_json(entry.last(Operation.EXTERNAL)),
        "last_internal": _rotation_json(entry.last(Operation.INTERNAL)),
        "discovered": entry.note != NOT_DISCOVERED,
        "note": entry.note,
    }


def _rotation_json(rotation: Rotation | None) -> dict[str, Any] | None:
    if rotation is None:
        return None
    return {
        "rotated_at": iso_utc(rotation.at),
        "run_id": rotation.run_id,
        "key_id": rotation.key_id,
        "provider": rotation.provider,
    }


_HEADERS = (
    "TARGET",
    "PROVIDER",
    "LAST ROTATED (UTC)",
    "AGE",
    "RUN",
    "KEY ID",
    "OTHER ROTATION (UTC)",
    "STATUS",
)


def history_lines(history: History) -> list[str]:
    """A plain aligned table and a summary line. `LAST ROTATED` is the judged operation's
    (`--rekey`, external by default), `OTHER ROTATION` the other one's.

    Plain text, not a terminal widget: the usual reader is a cron mail or a grep, where
    wrapped columns and colour codes only get in the way.
    """
    rows = [_HEADERS] + [_entry_cells(entry) for entry in history.entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    table = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return [*(table if history.entries else []), summary_line(history)]


def _entry_cells(entry: HistoryEntry) -> tuple[str, ...]:
    rotation, other = entry.rotation, entry.other
    provider = entry.provider or "-"
    other_cell = f"{iso_utc(other.at)} {other.operation.value}" if other else "never"
    if rotation is None:
        status = f"{entry.status.value} ({entry.note})" if entry.note else entry.status.value
        return (str(entry.key), provider, "never", "-", "-", "-", other_cell, status)
    age = format_duration(entry.age_s or 0.0)
    key_id = rotation.key_id or "-"
    return (
        str(entry.key),
        provider,
        iso_utc(rotation.at),
        age,
        rotation.run_id,
        key_id,
        other_cell,
        entry.status.value,
    )


def summary_line(history: History) -> str:
    """`3 targets: 1 ok, 1 older than 90d, 1 never rotated`."""
    if not history.entries:
        return "no matching target in the ledger"
    threshold = history.older_than_s
    ok_label = (
        f"rotated within {format_duration(threshold)}" if threshold is not None else "rotated"
    )
    parts = [f"{history.count(RotationStatus.OK)} {ok_label}"]
    if threshold is not None:
        parts.append(
            f"{history.count(RotationStatus.OVERDUE)} older than {format_duration(threshold)}"
        )
    parts.append(f"{history.count(RotationStatus.NEVER_ROTATED)} never rotated")
    noun = "target" if len(history.entries) == 1 else "targets"
    which = "" if history.operation is Operation.EXTERNAL else " (rekey-internal)"
    return f"{len(history.entries)} {noun}{which}: {', '.join(parts)}"


# -- opening the ledger read-only -----------------------------------------------------------


def open_ledger_readonly(path: Path) -> Ledger:
    """The ledger at `path`, opened read-only (`Ledger.open_readonly`)."""
    return Ledger.open_readonly(path)
