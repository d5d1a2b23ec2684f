"""`ontap-rekey demo`: the whole story on a simulated fleet, on loopback, in under a minute.

It serves a small fleet with a realistic mix of faults (key stores initializing, a node
failure, dropped connections, overload, one SVM whose keys live in the admin SVM, one SVM
without AWS KMS, one old cluster), writes its inventory, plans, runs with a canary wave,
shows progress and the recap, and prints where the reports are. Every file goes into a new
folder under `./ontap-rekey-demo/`, ports come from the OS: running it twice just works.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import click
import yaml

from orchestrator.core.exitcodes import ExitCode
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
        _cli("plan", inventory, folder, "plan")
        _step("2/2 run: a canary, then 10 %, then the rest")
        code = _cli("run", inventory, folder, "run", "--yes")
    why = ": the scenario leaves some targets not rekeyed on purpose" if code == 3 else ""
    click.echo(
        f"demo: done, exit code {code}{why}; open {folder}/run/report.html, "
        "and see docs/errors.md for what each error means"
    )
    return code


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


__all__ = ["ExitCode", "command"]
