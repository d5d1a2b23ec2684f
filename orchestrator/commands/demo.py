"""`ontap-rekey demo`: the whole story on a simulated fleet, on loopback, in under a minute.

It serves a small fleet with a realistic mix of faults (key stores initializing, a node
failure, dropped connections, overload, one SVM whose keys live in the admin SVM, one SVM
without AWS KMS, one old cluster), writes its inventory, plans, runs with a canary wave,
shows progress and the recap, and prints where the reports are. Every file goes into a new
folder under `./ontap-rekey-demo/`, ports come from the OS: running it twice just works.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import click
import yaml

from orchestrator.core.exitcodes import ExitCode
from orchestrator.core.outcomes import is_success
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, inventory_document
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import Simulation, running_simulator

DEMO_ROOT = Path("ontap-rekey-demo")
DEMO_CLUSTERS = 4
DEMO_SVMS = 8

DEMO_SCENARIO: dict[str, Any] = {
    "seed": 42,
    "options": {"job_duration": {"min_s": 0.3, "max_s": 1.2}},
    "faults": [
        {"kind": "keystore_initializing", "cluster": "c002", "svm": "svm0[34]", "attempts": 2},
        {"kind": "node_failure", "cluster": "c003", "svm": "svm05", "attempts": 1},
        {"kind": "drop_after", "cluster": "c001", "svm": "svm0[67]", "rate": 1.0},
        {"kind": "keys_in_admin_svm", "cluster": "c003", "svm": "svm08"},
        {"kind": "no_aws_kms", "cluster": "c004", "svm": "svm08"},
        {
            "kind": "http_errors",
            "cluster": "c004",
            "rate": 0.1,
            "requests": "rekey",
            "statuses": [503],
        },
        {"kind": "version", "cluster": "c005", "version": "9.11.1"},
    ],
}
EXPECTED_PLAN_CODES = (ExitCode.OK, ExitCode.NOT_READY)  # the old cluster is not ready
EXPECTED_RUN_CODES: dict[int, str] = {
    ExitCode.OK: "every target rekeyed",
    ExitCode.INCOMPLETE: "the run finished, some targets not rekeyed",
}
SHOWN_TARGETS = 5
DEMO_RETRY = {"65539436": {"base_delay_s": 1.0, "max_delay_s": 3.0}}  # initializing: short


@click.command(name="demo")
@click.option(
    "--clusters",
    type=click.IntRange(1, 50),
    default=DEMO_CLUSTERS + 1,
    show_default=True,
    help="Simulated clusters (the last one runs ONTAP 9.11).",
)
@click.option("--svms", type=click.IntRange(1, 50), default=DEMO_SVMS, show_default=True)
def command(clusters: int, svms: int) -> int:
    """Rotate a simulated fleet end to end: simulate, plan, run with a canary, report."""
    folder = _new_folder()
    spec = FleetSpec.generate(clusters, svms)
    with running_simulator(spec, Scenario.model_validate(DEMO_SCENARIO), seed=42) as sim:
        inventory = _write_inventory(folder, spec, sim)
        click.echo(
            f"demo: {clusters} simulated clusters x {svms} SVMs on loopback; files in {folder}/"
        )
        os.environ[PASSWORD_ENV] = spec.clusters[0].password
        os.environ.setdefault("ONTAP_REKEY_STDERR_LEVEL", "warning")
        _step("1/2 plan: what would be rekeyed, what is not ready and why")
        plan_code = _cli("plan", inventory, folder, "plan")
        _step("2/2 run: a canary, then 10 %, then the rest")
        run_code = _cli("run", inventory, folder, "run", "--yes")
    return _closing(folder, plan_code, run_code)


def _closing(folder: Path, plan_code: int, run_code: int) -> int:
    """0 when the story ran as designed (its faults are part of it), else the odd code.

    The scenario's permanent faults leave targets not rekeyed, so the run's own exit code
    is 3 by design (0 if a future scenario had none); the demo says so instead of
    passing the 3 on: `make demo`, the README's first command, must not look broken.
    """
    if plan_code not in EXPECTED_PLAN_CODES:
        click.echo(
            f"demo: the plan ended with exit code {plan_code}, which the story does not expect"
        )
        return plan_code
    if run_code not in EXPECTED_RUN_CODES:
        click.echo(
            f"demo: the run ended with exit code {run_code}, which the story does not expect"
        )
        return run_code
    click.echo(
        f"demo: done as designed. The run's own exit code was {run_code} "
        f"({EXPECTED_RUN_CODES[run_code]}){_not_rekeyed(folder / 'run' / 'report.json')}"
    )
    click.echo(
        f"demo: open {folder}/run/report.html, and see docs/errors.md for what each error means"
    )
    return int(ExitCode.OK)


def _not_rekeyed(report_json: Path) -> str:
    """`: c003/svm08 failed (65537547), ...` from the run's report, on purpose."""
    try:
        targets = json.loads(report_json.read_text(encoding="utf-8"))["targets"]
    except (OSError, ValueError, KeyError):
        return "."
    missed = [t for t in targets if not is_success(t["outcome"])]
    if not missed:
        return "."
    listed = ", ".join(_describe(t) for t in missed[:SHOWN_TARGETS])
    more = f" and {len(missed) - SHOWN_TARGETS} more" if len(missed) > SHOWN_TARGETS else ""
    return f": the scenario's faults leave {listed}{more}, on purpose."


def _describe(target: dict[str, Any]) -> str:
    why = (target.get("error") or {}).get("code") or target.get("reason")
    return f"{target['target']} {target['outcome']}" + (f" ({why})" if why else "")


def _new_folder() -> Path:
    folder = DEMO_ROOT / time.strftime("%Y%m%d-%H%M%S")
    suffix = 0
    while folder.exists():
        suffix += 1
        folder = DEMO_ROOT / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
    folder.mkdir(parents=True)
    return folder


def _write_inventory(folder: Path, spec: FleetSpec, sim: Simulation) -> Path:
    document = inventory_document(spec, sim.urls)
    document["retry"] = DEMO_RETRY
    path = folder / "inventory.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _cli(command: str, inventory: Path, folder: Path, reports: str, *extra: str) -> int:
    from orchestrator.cli import main

    return main(
        [
            command,
            str(inventory),
            "--state",
            str(folder / "ontap-rekey.db"),
            "--report-dir",
            str(folder / reports),
            "--log-file",
            str(folder / f"{command}.log"),
            *extra,
        ]
    )


def _step(text: str) -> None:
    click.echo(f"\n== {text}")
