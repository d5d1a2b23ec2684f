"""`ontap-rekey plan INVENTORY [SELECTORS]`: the dry run. Contacts the clusters, POSTs nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import click

from orchestrator.commands import common
from orchestrator.commands.options import check_selection, selection_from, selector_options
from orchestrator.commands.run import options_from_flags, run_options
from orchestrator.config.loader import load_inventory
from orchestrator.core.identity import with_recorded_uuids
from orchestrator.engine.plan_run import execute_plan
from orchestrator.engine.runner import RunRequest
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import PlanEstimate, RunMode


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
        request = RunRequest(loaded, selection, options, RunMode.PLAN)
        result = anyio.run(execute_plan, request, AsyncLedger(ledger))
        common.finish(ledger, result.run, kw["report_dir"], out)
        out.print(_estimate_line(result.estimate))
        return int(result.exit_code)


def _estimate_line(est: PlanEstimate) -> str:
    waves = " + ".join(str(n) for n in est.waves) or "none"
    return (
        f"plan: {est.targets} ready targets in waves {waves}; estimated "
        f"{est.estimated_s:.0f} s at {est.job_estimate_s:.0f} s per rekey job"
    )
