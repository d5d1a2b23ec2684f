"""`ontap-rekey resume RUN_ID`: continue an interrupted run from the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import click

from orchestrator.commands import common
from orchestrator.config.loader import load_inventory
from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import RunRequest, Wiring, resume_run
from orchestrator.errors import StateError
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus


@click.command(name="resume")
@click.argument("run_id")
@click.option(
    "--inventory-changed-ok",
    is_flag=True,
    help="Resume even though the inventory file changed since the run started.",
)
@common.output_options
def command(run_id: str, **kw: Any) -> int:
    """Continue an interrupted run: settle in-flight rekeys, then carry on."""
    common.setup_logging(kw["log_file"], kw["log_format"], kw["log_level"])
    out = common.console()
    common.check_report_dir(kw["report_dir"])  # before the first request
    with common.open_ledger(kw["state"]) as ledger:
        record = ledger.get_run(run_id)
        _check_resumable(record)
        options = _stored_options(record)  # before anything is contacted or loaded
        common.refuse_if_running(ledger)
        inventory = load_inventory(Path(record.inventory_path))
        if inventory.sha256 != record.inventory_sha256 and not kw["inventory_changed_ok"]:
            raise StateError(
                f"{record.inventory_path} changed since run {run_id} started "
                "(sha256 differs); check it, then pass --inventory-changed-ok"
            )
        request = RunRequest(inventory, Selection(), options, record.mode)
        wiring = Wiring(AsyncLedger(ledger), observer=common.progress(out), keep_rows=False)
        result = anyio.run(resume_run, record, request, wiring)
        run, code = result.run, int(result.exit_code)
        del result  # the engine's rows go before the report phase reads its own
        common.release_engine_memory()
        common.finish(ledger, run, kw["report_dir"], out)
        return code


def _stored_options(record: RunRecord) -> RunOptions:
    try:
        return RunOptions.from_json(record.options)
    except (TypeError, ValueError) as exc:  # another release's ledger, or edited by hand
        raise StateError(
            f"run {record.run_id}: {exc}; resume it with the release that started it"
        ) from None


def _check_resumable(record: RunRecord) -> None:
    if record.mode is RunMode.PLAN:
        raise StateError(f"run {record.run_id} is a plan: there is nothing to resume")
    if record.status is RunStatus.FINISHED:
        raise StateError(f"run {record.run_id} finished: every target has its outcome")
