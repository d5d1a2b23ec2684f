"""A whole plan, beside a whole run (engine/runner.py): discovery with health fields and key
stores, a verdict per target (engine/planner.py), the estimate, and the plan's record.

It shares with a run the record builder (`run_record.new_run_record`), the log context
(`run_record.log_context`: every line carries the plan's run id) and the storage port
(`RunStore`, awaited: nothing blocks the event loop). It does not take the ledger's run
lock: a plan sends no POST, and an operator may plan while a rotation runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import structlog

from orchestrator.core.exitcodes import ExitCode, exit_code
from orchestrator.core.inventory import ClusterSpec
from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.engine.discovery import require_selected_targets
from orchestrator.engine.planner import estimate, plan_rows
from orchestrator.engine.pool import ClusterPool, TransportFactory
from orchestrator.engine.run_record import log_context, new_run_record
from orchestrator.engine.runner import RunRequest, discover_all, selected_specs
from orchestrator.engine.store import RunStore
from orchestrator.ledger.records import PlanEstimate, RunMode, RunRecord, RunStatus, TargetRow


@dataclass(frozen=True)
class PlanResult:
    run: RunRecord  # as the store has it, closed: the reports render this
    rows: list[TargetRow]
    estimate: PlanEstimate
    exit_code: ExitCode


async def execute_plan(
    request: RunRequest, store: RunStore, transport_factory: TransportFactory | None = None
) -> PlanResult:
    """Discover the selection, judge every target, and record the plan as a finished run."""
    specs = selected_specs(request)
    record = new_run_record(
        await store.new_run_id(),
        RunMode.PLAN,
        request.inventory,
        request.options,
        request.selection,
        specs,
    )
    with structlog.contextvars.bound_contextvars(**log_context(record)):
        rows, est = await plan_targets(
            record.run_id, specs, request.selection, request.options, transport_factory
        )
        await store.create_run(replace(record, estimate=est))
        await store.add_targets(rows)
        await store.set_run_status(record.run_id, RunStatus.FINISHED, time.time())
        stored = await store.get_run(record.run_id)
    code = exit_code(RunMode.PLAN, RunStatus.FINISHED, [row.outcome for row in rows])
    return PlanResult(stored, rows, est, code)


async def plan_targets(
    run_id: str,
    specs: list[ClusterSpec],
    selection: Selection,
    options: RunOptions,
    transport_factory: TransportFactory | None,
) -> tuple[list[TargetRow], PlanEstimate]:
    """Discover with health fields and key stores; a verdict per target, and the estimate."""
    async with ClusterPool(specs, options, transport_factory) as pool:
        found = await discover_all(pool, options)
        rows = plan_rows(run_id, pool, found, selection, options.rekey)
        require_selected_targets(selection, found, rows)
        return rows, estimate(rows, pool, options)
