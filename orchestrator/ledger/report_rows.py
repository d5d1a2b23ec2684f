"""A run's rows as the reports read them: every column a report uses, and nothing else.

`Ledger.targets` / `Ledger.transitions` load every column, for the engine's resume too.
No report reads a target's `evidence` (the lifecycle's record of how the outcome was
reached) or a transition's `detail`: here they are left in the file (empty in the
objects), which is 40,000 `json.loads` and ~20 MB fewer at 10,000 targets. The rows are
read a page at a time, each transition's target key is the row's own key object and each
state its enum member, so the lists are all that is held. Every text a row repeats (a
cluster's name, `rekeyed`, `aws`, a facts key, an event name, a key id written in three
columns) is one string object, not one per row as SQLite and `json.loads` hand them out:
~9 MB fewer at 10,000 targets. Otherwise the same values, in the same order, as the full
readers (`tests/test_report_rows.py`).
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.ledger.records import TargetRow, Transition
from orchestrator.ledger.store import Ledger

# The TargetRow fields after run_id and key, in order (positional: one call per row);
# `evidence` is not read (NULL in its place).
_FIELDS = tuple(f.name for f in fields(TargetRow) if f.name not in ("run_id", "key"))
_COLUMNS = ", ".join("NULL" if name == "evidence" else name for name in _FIELDS)
_TARGETS_SQL = (
    f"SELECT cluster, svm, {_COLUMNS} FROM targets WHERE run_id = ? ORDER BY cluster, svm"
)
_TRANSITIONS_SQL = (
    "SELECT cluster, svm, at, state, attempt, event FROM transitions WHERE run_id = ? ORDER BY seq"
)
_STATES = {state.value: state for state in TargetState}
_STATE_AT = _FIELDS.index("state")
_FACTS_AT = _FIELDS.index("facts")
_EVIDENCE_AT = _FIELDS.index("evidence")
_EMPTY_JSON = "{}"


def targets(ledger: Ledger, run_id: str) -> list[TargetRow]:
    """`ledger.targets(run_id)` without the `evidence` of each row (left empty)."""
    rows: list[TargetRow] = []
    texts: dict[str, str] = {}  # each distinct text once, for this read only
    for page in ledger.read_pages(_TARGETS_SQL, (run_id,)):
        rows.extend(_target(run_id, row, texts) for row in page)
    return rows


def transitions(ledger: Ledger, run_id: str, rows: list[TargetRow]) -> list[Transition]:
    """`ledger.transitions(run_id)` without the `detail` of each (left empty); the target
    keys are those of `rows` (the run's targets) wherever one matches."""
    keys: dict[tuple[str, str], TargetKey] = {(r.key.cluster, r.key.svm): r.key for r in rows}
    steps: list[Transition] = []
    events: dict[str, str] = {}
    for page in ledger.read_pages(_TRANSITIONS_SQL, (run_id,)):
        for cluster, svm, at, state, attempt, event in page:
            key = keys.get((cluster, svm)) or keys.setdefault(
                (cluster, svm), TargetKey(cluster, svm)
            )
            name = events.setdefault(event, event)
            steps.append(Transition(run_id, key, at, _STATES[state], attempt, name))
    return steps


def _target(run_id: str, row: Any, texts: dict[str, str]) -> TargetRow:
    values: list[Any] = [texts.setdefault(v, v) if type(v) is str else v for v in row]
    cluster, svm = values[0], values[1]
    del values[:2]
    values[_STATE_AT] = _STATES[values[_STATE_AT]]
    facts = values[_FACTS_AT]
    values[_FACTS_AT] = {} if facts == _EMPTY_JSON else _shared(json.loads(facts), texts)
    values[_EVIDENCE_AT] = {}
    return TargetRow(run_id, TargetKey(cluster, svm), *values)


def _shared(facts: dict[str, Any], texts: dict[str, str]) -> dict[str, Any]:
    """`facts` with its keys and text values taken from `texts` (the same dict, in order)."""
    return {
        texts.setdefault(k, k): texts.setdefault(v, v) if type(v) is str else v
        for k, v in facts.items()
    }
