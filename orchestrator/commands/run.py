"""`ontap-rekey run INVENTORY [SELECTORS] [OPTIONS]`: the rotation."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import click

from orchestrator.commands import common
from orchestrator.commands.options import (
    check_selection,
    rekey_from_flag,
    rekey_option,
    selection_from,
    selector_options,
)
from orchestrator.commands.preview import cluster_line, question, summary_lines
from orchestrator.config.loader import load_inventory
from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.identity import with_recorded_uuids
from orchestrator.core.options import RunOptions, overlaps_discovery, resolve_options
from orchestrator.core.waves import WaveSpecError, parse_waves
from orchestrator.engine.planner import RunPreview
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.errors import UserError
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.records import RunMode, TargetRow

DECLINED = "nothing was rekeyed: declined at the prompt (no run was recorded; exit 0)"


def run_options(func: Any) -> Any:
    decorators = [
        click.option(
            "--concurrency",
            type=click.IntRange(min=1),
            default=None,
            help="Targets in flight overall [64].",
        ),
        click.option(
            "--per-cluster",
            type=click.IntRange(min=1),
            default=None,
            help="Targets in flight per cluster [2; emergency 4].",
        ),
        click.option(
            "--waves",
            default=None,
            help="Wave sizes: counts and percentages of the targets left [1,10%,100%].",
        ),
        click.option(
            "--max-fail-percent",
            type=click.FloatRange(0, 100),
            default=None,
            help="Stop when more than P % of finished targets failed, once 5 finished "
            "[10; emergency: no budget unless given].",
        ),
        click.option("--fail-fast", is_flag=True, default=None, help="Stop at the first failure."),
        click.option(
            "--deadline",
            default=None,
            metavar="DURATION",
            help="No new attempt starts after this long (e.g. 2h, 45m).",
        ),
        click.option(
            "--return-timeout",
            type=click.IntRange(0, 120),
            default=None,
            help="Seconds ONTAP may hold the POST before answering 202 [30].",
        ),
        click.option(
            "--request-timeout",
            type=click.FloatRange(min=0.1),
            default=None,
            help="Seconds to wait for any answer [60]. A POST left with no answer and no "
            "trace on the cluster is re-sent only after twice this long.",
        ),
        click.option(
            "--discovery-timeout",
            type=click.FloatRange(min=0.1),
            default=None,
            help="Seconds a cluster may take to be discovered [30]; a cluster that does not "
            "answer by then is skipped as unreachable, so it cannot hold up the others.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return rekey_option(func)


@click.command(name="run")
@click.argument("inventory", type=click.Path(path_type=Path))
@selector_options
@run_options
@click.option(
    "--skip-not-ready",
    is_flag=True,
    default=None,
    help="Leave targets the plan calls not ready (key store switching, AWS unreachable, "
    "...) skipped: not_ready instead of trying them last.",
)
@click.option(
    "--emergency",
    is_flag=True,
    help="Emergency profile: no waves, priority order, --per-cluster 4, no failure budget "
    "unless --max-fail-percent is given, no fail-fast; the per-cluster circuit breaker "
    "stays on. A run whose targets all finished exits 0 or 3, never 4.",
)
@click.option("--reason", default=None, help="Why (required with --emergency).")
@click.option("--all", "all_targets", is_flag=True, help="Emergency: allow the whole inventory.")
@click.option(
    "--yes",
    is_flag=True,
    help="Do not ask for confirmation. Answering no at the prompt rekeys nothing, records "
    "nothing and exits 0. With one wave (--waves 100%), no --emergency, no --svm or "
    "--targets, and more clusters than --concurrency rotates at once, each cluster's "
    "targets start as soon as it is discovered.",
)
@click.option(
    "--plan-first",
    is_flag=True,
    help="With --yes: discover every cluster and print the whole plan summary before the "
    "first POST (always so without --yes).",
)
@common.output_options
def command(inventory: Path, **kwargs: Any) -> int:
    """Rekey the selected targets: canary, waves, retries, verification.

    Before the first POST it prints the plan summary (ready / not ready per cluster with
    the causes, the waves, the estimate) and asks `Rekey N targets on M clusters?`.
    """
    return run_command(inventory, **kwargs)


def run_command(inventory: Path, **kw: Any) -> int:
    selection = selection_from(kw)
    _check_emergency(kw, selection.is_empty)
    loaded = load_inventory(inventory)
    check_selection(selection, loaded)
    options = options_from_flags(kw, loaded.defaults)
    confirmed = kw["yes"] and not kw["plan_first"]
    options = replace(
        options, overlap_discovery=overlaps_discovery(options, selection, confirmed=confirmed)
    )
    common.require_yes_or_terminal(kw["yes"])
    common.setup_logging(kw["log_file"], kw["log_format"], kw["log_level"])
    out = common.console()
    common.check_report_dir(kw["report_dir"])  # before the first request
    with common.open_ledger(kw["state"]) as ledger:
        common.refuse_if_running(ledger)
        loaded = with_recorded_uuids(loaded, ledger.recorded_cluster_uuids())
        wiring = Wiring(AsyncLedger(ledger), observer=common.progress(out), keep_rows=False)
        wiring.confirm = _announce if kw["yes"] else _confirm
        wiring.cluster_seen = _ClusterLines()
        result = anyio.run(
            execute_run, RunRequest(loaded, selection, options, _mode(options)), wiring
        )
        if result is None:
            click.echo(DECLINED, err=True)
            return int(ExitCode.OK)
        run, code = result.run, int(result.exit_code)
        del result  # the engine's rows go before the report phase reads its own
        common.release_engine_memory()
        common.finish(ledger, run, kw["report_dir"], out)
        return code


def _mode(options: RunOptions) -> RunMode:
    return RunMode.EMERGENCY if options.emergency else RunMode.RUN


def _check_emergency(kw: dict[str, Any], no_selectors: bool) -> None:
    if kw["emergency"] and not kw["reason"]:
        raise UserError("--emergency needs --reason TEXT (it goes into the ledger and report)")
    if kw["reason"] and not kw["emergency"]:
        raise UserError("--reason goes with --emergency")
    if kw["emergency"] and no_selectors and not kw["all_targets"]:
        raise UserError(
            "--emergency without selectors would rekey the whole inventory: "
            "select targets (--cluster/--svm/--tag/--targets) or pass --all"
        )


def options_from_flags(kw: dict[str, Any], defaults: Any) -> RunOptions:
    if kw["waves"] is not None:
        try:
            parse_waves(kw["waves"])
        except WaveSpecError as exc:
            raise UserError(f"--waves {exc.spec!r}: {exc.problem}") from None
    cli = {
        "concurrency": kw["concurrency"],
        "per_cluster": kw["per_cluster"],
        "waves": kw["waves"],
        "max_fail_percent": kw["max_fail_percent"],
        "fail_fast": kw["fail_fast"],
        "return_timeout": kw["return_timeout"],
        "request_timeout_s": kw["request_timeout"],
        "discovery_timeout_s": kw["discovery_timeout"],
        "deadline_s": common.deadline_seconds(kw["deadline"]),
        "emergency": kw["emergency"] or None,
        "reason": kw["reason"],
        "skip_not_ready": kw.get("skip_not_ready"),
        "rekey": rekey_from_flag(kw.get("rekey")),
    }
    return resolve_options(cli, defaults)


def _announce(shown: RunPreview) -> bool:
    """`--yes`: the plan summary still goes to stderr, for the scheduler's log."""
    for line in summary_lines(shown):
        click.echo(line, err=True)
    return True


OVERLAPPED = (
    "plan: each cluster's targets start as soon as it is discovered (--yes, one wave; "
    "--plan-first shows the whole plan first); the clusters as they answer:"
)


class _ClusterLines:
    """An overlapped run's plan summary: a heading with the first cluster discovered,
    then each cluster's line as it is discovered."""

    def __init__(self) -> None:
        self._headed = False

    def __call__(self, name: str, rows: list[TargetRow]) -> None:
        if not self._headed:
            click.echo(OVERLAPPED, err=True)
            self._headed = True
        click.echo(f"  {name}: {cluster_line(rows)}", err=True)


def _confirm(shown: RunPreview) -> bool:
    _announce(shown)
    if not shown.pending:  # nothing would be POSTed: no question, the run records why
        return True
    return click.confirm(question(shown), default=False, err=True)
