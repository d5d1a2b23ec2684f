"""`report.json`: the machine-readable report (`"schema": "ontap-rekey/report/v1"`).

Built only from the ledger's rows, so `ontap-rekey report RUN_ID` reproduces it for any
past run. Times are ISO-8601 UTC strings; durations are seconds. The format is documented
in docs/report.md and pinned by `report.schema.json` next to this module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from orchestrator import __version__
from orchestrator.core.providers import Operation
from orchestrator.ledger.records import RunRecord, TargetRow, Transition
from orchestrator.observe import hints
from orchestrator.observe.reports import summary

SCHEMA_ID = "ontap-rekey/report/v1"


def build_report(
    run: RunRecord, targets: Sequence[TargetRow], transitions: Sequence[Transition]
) -> dict[str, Any]:
    """The report of `run` as a JSON-serialisable dict."""
    retries = summary.retries_by_target(targets)
    return _summary(run, targets, retries) | {
        "targets": [
            _target_section(row, summary.retries(row))  # as `retries` holds it, found faster
            for row in sorted(targets, key=summary.by_key)
        ]
    }


def build_summary(run: RunRecord, targets: Sequence[TargetRow]) -> dict[str, Any]:
    """`build_report` without its `targets` (one section per target: most of its cost)."""
    return _summary(run, targets, summary.retries_by_target(targets))


def _summary(
    run: RunRecord, targets: Sequence[TargetRow], retries: dict[str, int]
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "generator": {"name": "ontap-rekey", "version": __version__},
        "run": _run_section(run, targets),
        "tls_verify_disabled": sorted(run.tls_verify_disabled),
        "totals": _totals(run, targets, sum(retries.values())),
        "clusters": [
            _cluster_section(run, name, rows, retries)
            for name, rows in summary.by_cluster(targets).items()
        ],
        "errors": [_error_section(group) for group in summary.error_groups(targets)],
        "timings": _timings(run, targets),
    }


def iso(timestamp: float | None) -> str | None:
    """Unix time as ISO-8601 UTC (`2025-01-31T12:00:00.250Z`), None stays None.

    `datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")` with `Z`
    for `+00:00`, byte for byte (`tests/test_report_iso.py`), without a datetime each
    (200,000 at 100,000 targets): the microseconds rounded half to even as `fromtimestamp`
    rounds them, a carry into the next second, and each second's text made once."""
    if timestamp is None:
        return None
    fraction, whole = math.modf(timestamp)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        micros -= 1_000_000
        whole += 1.0
    elif micros < 0:
        micros += 1_000_000
        whole -= 1.0
    head = _SECONDS.get(whole) or _second(whole)
    return f"{head}.{micros // 1000:03d}Z"


_SECONDS: dict[float, str] = {}  # a whole second's text, up to the millisecond's dot
_SECONDS_MAX = 4096  # ~0.4 MB at most; a run spanning more seconds makes the rest as it goes


def _second(whole: float) -> str:
    moment = datetime.fromtimestamp(whole, tz=UTC)
    head = moment.isoformat(timespec="seconds").removesuffix("+00:00")
    if len(_SECONDS) < _SECONDS_MAX:
        _SECONDS[whole] = head
    return head


def _run_section(run: RunRecord, targets: Sequence[TargetRow]) -> dict[str, Any]:
    code = summary.exit_code(run, targets)
    return {
        "run_id": run.run_id,
        "mode": run.mode.value,
        "operation": run.options.get("rekey", "external"),  # issue 15: the rotation
        "reason": run.reason,
        "status": run.status.value,
        "exit_code": int(code) if code is not None else None,
        "operator": run.operator,
        "inventory": {"path": run.inventory_path, "sha256": run.inventory_sha256},
        "options": _sorted(run.options | _beside_options(run)),
        "selection": _sorted(run.selection),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "duration_s": _round(run.ended_at - run.started_at) if run.ended_at else None,
    }


def _beside_options(run: RunRecord) -> dict[str, Any]:
    """report.json lists the TLS flag and a plan's estimate under `options`, as it did
    before the record gave them fields of their own (readers of the file look there)."""
    extra: dict[str, Any] = {}
    if run.tls_verify_disabled:
        extra["tls_verify_disabled"] = sorted(run.tls_verify_disabled)
    if run.estimate is not None:
        extra["estimate"] = run.estimate.to_json()
    return extra


def _totals(run: RunRecord, targets: Sequence[TargetRow], retries: int) -> dict[str, int]:
    return {"targets": len(targets)} | summary.count_outcomes(run, targets) | {"retries": retries}


def _cluster_section(
    run: RunRecord, name: str, rows: list[TargetRow], retries: dict[str, int]
) -> dict[str, Any]:
    span = summary.span(rows)
    return {
        "name": name,
        "targets": len(rows),
        "outcomes": summary.count_outcomes(run, rows),
        "reasons": dict(sorted(summary.reason_counts(rows).items())),
        "providers": summary.provider_counts(rows),
        "retries": sum(retries.get(str(row.key), 0) for row in rows),
        "duration_s": _round(span) if span is not None else None,
    }


def _error_section(group: summary.ErrorGroup) -> dict[str, Any]:
    return {
        "code": group.code,
        "class": group.error_class,
        "count": group.count,
        "message": group.message,
        "description": group.description,
        "hint": group.hint,
        "clusters": sorted(group.clusters),
        "targets": group.targets,
    }


def _timings(run: RunRecord, targets: Sequence[TargetRow]) -> dict[str, Any]:
    durations = [d for d in map(summary.duration, targets) if d is not None]
    span = summary.span(targets)
    wall = (run.ended_at - run.started_at) if run.ended_at is not None else span
    stats = {
        "p50": summary.percentile(durations, 50),
        "p95": summary.percentile(durations, 95),
        "max": max(durations) if durations else None,
        "mean": sum(durations) / len(durations) if durations else None,
    }
    return {
        "wall_s": _round(wall) if wall is not None else None,
        "targets_span_s": _round(span) if span is not None else None,
        "target_duration_s": {k: _round(v) if v is not None else None for k, v in stats.items()},
        "timed_targets": len(durations),
    }


def _target_section(row: TargetRow, retries: int) -> dict[str, Any]:
    duration = summary.duration(row)
    return {
        "target": str(row.key),
        "cluster": row.key.cluster,
        "svm": row.key.svm,
        "provider": row.provider,  # None: the SVM has no key manager the run could use
        "operation": _OPERATIONS.get(row.operation) or row.operation_kind.value,
        "outcome": row.outcome,
        "reason": row.reason,
        "state": row.state.value,
        "attempts": row.attempts,
        "retries": retries,
        "wave": row.wave,
        "priority": row.priority,
        "config_uuid": row.config_uuid,
        "key_id_before": row.key_id_before,
        "key_id_intended": row.key_id_intended,
        "key_id_after": row.key_id_after,
        "job_uuid": row.job_uuid,
        "error": _error_of(row),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "duration_s": _round(duration) if duration is not None else None,
        "facts": _sorted(row.facts),
    }


# `row.operation_kind.value` for each valid column value (None: a v3 ledger's row, external).
_OPERATIONS: dict[str | None, str] = {op.value: op.value for op in Operation}
_OPERATIONS[None] = Operation.EXTERNAL.value


def _error_of(row: TargetRow) -> dict[str, Any] | None:
    if row.error_code is None and row.error_class is None and row.error_message is None:
        return None
    return {
        "code": row.error_code,
        "message": row.error_message or "",
        "class": row.error_class,
        "hint": hints.hint_for(row.error_code, recorded=row.error_hint),
    }


def _sorted(value: Any) -> Any:
    """Keys sorted at every depth: the ledger stores JSON with sorted keys, so a report
    rendered at the end of the run and one rendered from the ledger later are identical.
    A flat dict already in order (a row's facts read back from the ledger) is not copied."""
    if isinstance(value, dict):
        if type(value) is dict and _flat_and_ordered(value):
            return value
        return {key: _sorted(value[key]) for key in sorted(value)}
    if isinstance(value, list | tuple):
        return [_sorted(item) for item in value]
    return value


def _flat_and_ordered(value: dict[Any, Any]) -> bool:
    keys = list(value)
    if keys != sorted(keys):
        return False
    kinds = set(map(type, value.values()))  # the types looked at in C, not a call a value
    if kinds <= _SCALARS:
        return True
    containers = [v for v in value.values() if type(v) in _EMPTIABLE]
    return kinds <= _LEAF_KINDS and not any(containers)


_SCALARS = frozenset({str, int, float, bool, type(None)})
_EMPTIABLE = frozenset({list, dict})
_LEAF_KINDS = _SCALARS | _EMPTIABLE


def _round(seconds: float) -> float:
    return round(seconds, 3)
