"""The plan summary `run` shows before its first POST (and above the confirmation prompt)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from orchestrator.core.readiness import NOT_READY_FACT
from orchestrator.core.targets import TargetState
from orchestrator.engine.planner import RunPreview
from orchestrator.ledger.records import TargetRow
from orchestrator.observe.text import plural

MAX_NAMES = 5  # SVM names listed per not-ready cause; the rest are counted


def question(shown: RunPreview) -> str:
    """The confirmation question: `Rekey N targets on M clusters?`."""
    targets, clusters = plural(len(shown.pending), "target"), plural(shown.clusters, "cluster")
    return f"Rekey {targets} on {clusters}?"


def summary_lines(shown: RunPreview) -> list[str]:
    """Ready / not ready per cluster with the causes, the waves with sizes, the estimate."""
    by_cluster: dict[str, list[TargetRow]] = defaultdict(list)
    for row in shown.rows:
        by_cluster[row.key.cluster].append(row)
    lines = [f"plan: {plural(len(shown.rows), 'target')} on {plural(len(by_cluster), 'cluster')}"]
    lines += [f"  {name}: {cluster_line(rows)}" for name, rows in sorted(by_cluster.items())]
    lines.append(_waves_line(shown))
    return lines


def cluster_line(rows: list[TargetRow]) -> str:
    """One cluster's part of the summary: ready, not ready with causes, decided."""
    pending = [row for row in rows if row.state is not TargetState.DONE]
    not_ready = [row for row in pending if NOT_READY_FACT in row.facts]
    parts = [f"{len(pending) - len(not_ready)} ready"]
    if not_ready:
        parts.append(f"{len(not_ready)} not ready ({_causes(not_ready)}), rekeyed last")
    decided: dict[str, list[TargetRow]] = defaultdict(list)
    for row in rows:
        if row.state is TargetState.DONE:
            decided[f"{row.outcome}: {row.reason}"].append(row)
    parts += [_decided(what, group) for what, group in sorted(decided.items())]
    return ", ".join(parts)


def _decided(what: str, rows: list[TargetRow]) -> str:
    """`2 skipped: unreachable`; `--skip-not-ready` ones also say why, as the plan does."""
    causes = [row for row in rows if NOT_READY_FACT in row.facts]
    return f"{len(rows)} {what}" + (f" ({_causes(causes)})" if causes else "")


def _causes(rows: Iterable[TargetRow]) -> str:
    names: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        names[str(row.facts[NOT_READY_FACT])].append(row.key.svm)
    return "; ".join(f"{cause}: {_names(svms)}" for cause, svms in sorted(names.items()))


def _names(svms: list[str]) -> str:
    shown = ", ".join(sorted(svms)[:MAX_NAMES])
    more = len(svms) - MAX_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def _waves_line(shown: RunPreview) -> str:
    est = shown.estimate
    waves = " + ".join(str(size) for size in est.waves) or "none"
    return (
        f"waves: {waves}; estimated {est.estimated_s:.0f} s "
        f"at {est.job_estimate_s:.0f} s per rekey job"
    )
