"""`ontap-rekey plan INVENTORY [SELECTORS]`: the dry run. Contacts the clusters, POSTs nothing."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import click

from orchestrator.commands import common
from orchestrator.commands.options import check_selection, selection_from, selector_options
from orchestrator.commands.run import options_from_flags, run_options
from orchestrator.config.loader import load_inventory
from orchestrator.core.exitcodes import exit_code
from orchestrator.core.identity import with_recorded_uuids
from orchestrator.core.options import ESTIMATE, RunOptions
from orchestrator.core.selectors import Selection, cluster_may_match
from orchestrator.engine.discovery import require_selected_targets
from orchestrator.engine.planner import estimate, plan_rows
from orchestrator.engine.pool import ClusterPool, TransportFactory
from orchestrator.engine.run_record import new_run_record
from orchestrator.engine.runner import discover_all
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus, TargetRow
from orchestrator.ledger.store import Ledger


@click.command(name="plan")
@click.argument("inventory", type=click.Path(path_type=Path))
@selector_options
@run_options
@click.option("--emergency", is_flag=True, help="Plan with the emergency profile.")
@common.output_options
def command(inventory: Path, **kw: Any) -> int:
    """Dry run: what would be rekeyed, what is not ready and why, how long it would take."""
    selection = selection_from(kw)
    loaded = load_inventory(inventory)
    check_selection(selection, loaded)
    options = options_from_flags({**kw, "reason": None}, loaded.defaults)
    common.setup_logging(kw["log_file"], kw["log_format"], kw["log_level"])
    out = common.console()
    common.check_report_dir(kw["report_dir"])  # before the first request
    with common.open_ledger(kw["state"]) as ledger:
        loaded = with_recorded_uuids(loaded, ledger.recorded_cluster_uuids())
        specs = [s for s in loaded.clusters if cluster_may_match(selection, s)]
        record = new_run_record(
            ledger.new_run_id(), RunMode.PLAN, loaded, options, selection, specs
        )
        rows, est = anyio.run(plan_targets, record.run_id, specs, selection, options, None)
        _record(ledger, record, rows, est)
        common.finish(ledger, ledger.get_run(record.run_id), kw["report_dir"], out)
        out.print(_estimate_line(est))
        return int(exit_code(RunMode.PLAN, RunStatus.FINISHED, [row.outcome for row in rows]))


async def plan_targets(
    run_id: str,
    specs: list[Any],
    selection: Selection,
    options: RunOptions,
    transport_factory: TransportFactory | None,
) -> tuple[list[TargetRow], dict[str, Any]]:
    """Discover with health fields and key stores; a verdict per target, and the estimate."""
    async with ClusterPool(specs, options, transport_factory) as pool:
        found = await discover_all(pool, options)
        rows = plan_rows(run_id, pool, found, selection, options.rekey)
        require_selected_targets(selection, found, rows)
        return rows, estimate(rows, pool, options)


def _record(ledger: Ledger, record: RunRecord, rows: list[TargetRow], est: dict[str, Any]) -> None:
    options = {**record.options, ESTIMATE: est}
    ledger.create_run(replace(record, options=options))
    ledger.add_targets(rows)
    ledger.set_run_status(record.run_id, RunStatus.FINISHED, time.time())


def _estimate_line(est: dict[str, Any]) -> str:
    waves = " + ".join(str(n) for n in est["waves"]) or "none"
    return (
        f"plan: {est['targets']} ready targets in waves {waves}; estimated "
        f"{est['estimated_s']:.0f} s at {est['job_estimate_s']:.0f} s per rekey job"
    )
