"""Subcommands load on demand (`cli.LazyGroup`, issue 16): a `run` imports neither the
simulator nor the other commands (nor `ontap.wire` while ONTAP's answers are usual), and
`--help` still lists every command exactly as click lists the commands themselves."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from orchestrator.cli import COMMANDS, cli
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, write_inventory
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import running_simulator

COMMANDS_DIR = Path(__file__).resolve().parent.parent / "orchestrator" / "commands"

NOT_FOR_A_RUN = (
    "orchestrator.simulator",
    "orchestrator.commands.demo",
    "orchestrator.commands.simulate",
    "orchestrator.commands.history",
    "orchestrator.commands.validate",
    "orchestrator.commands.plan",
    "trustme",
    "cryptography",
    "orchestrator.ontap.wire",  # the strict shapes: only for an unusual ONTAP record
)
"""What `demo`, `simulate` and the other commands import and a run never uses (nor the
wire models of ONTAP's records, when every answer has the usual shape)."""

SNIPPET = """
import json, sys
from orchestrator.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules_after(*argv: str, cwd: Path | None = None) -> tuple[int, set[str]]:
    """`main(argv)` in a fresh interpreter: its exit code and every module it imported."""
    env = os.environ | {PASSWORD_ENV: "netapp-sim", "ONTAP_REKEY_STDERR_LEVEL": "error"}
    done = subprocess.run(
        [sys.executable, "-c", SNIPPET, *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
        check=False,
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["code"], set(answer["modules"])


def _loaded(modules: set[str], prefixes: tuple[str, ...]) -> set[str]:
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)}


def _eager_group() -> click.Group:
    """The group as it was: the same options and help, every command imported and added."""
    ctx = click.Context(cli)
    commands = [cli.get_command(ctx, name) for name in COMMANDS]
    return click.Group(
        name=cli.name,
        help=cli.help,
        params=cli.params,
        context_settings=cli.context_settings,
        commands=[c for c in commands if c is not None],
    )


def _help(group: click.Group, width: int) -> str:
    """`--help` of `group` as the command line renders it (its context settings: `-h`)."""
    settings = group.context_settings
    return group.get_help(
        click.Context(group, info_name="ontap-rekey", terminal_width=width, **settings)
    )


@pytest.mark.parametrize("width", [40, 60, 80, 100, 120, 200])
def test_help_lists_every_command_as_click_lists_the_imported_commands(width: int) -> None:
    lazy_help = _help(cli, width)
    assert lazy_help == _help(_eager_group(), width)
    assert all(f"  {name} " in lazy_help for name in COMMANDS)
    assert "-h, --help" in lazy_help


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_summary_is_the_first_paragraph_of_the_commands_help(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None and command.name == name
    assert command.help is not None
    first_paragraph = command.help.split("\n\n", 1)[0]
    assert COMMANDS[name].summary.split() == first_paragraph.split()
    # what else would change click's one line: none is used
    assert (command.short_help, command.hidden, command.deprecated) == (None, False, False)


def test_every_command_module_is_in_the_table() -> None:
    """A new `orchestrator/commands/<x>.py` with a click `command` cannot be forgotten."""
    found = set()
    for path in COMMANDS_DIR.glob("*.py"):
        module = importlib.import_module(f"orchestrator.commands.{path.stem}")
        if isinstance(getattr(module, "command", None), click.Command):
            found.add(module.__name__)
    assert found == {entry.module for entry in COMMANDS.values()}
    assert cli.get_command(click.Context(cli), "no-such-command") is None


def test_help_imports_no_command_module() -> None:
    code, modules = _modules_after("--help")
    assert code == 0
    assert _loaded(modules, ("orchestrator.commands", "orchestrator.engine")) == set()
    assert "click" in modules  # not vacuous: the snippet reports what it imported


def test_run_help_imports_the_run_command_and_not_the_simulator() -> None:
    code, modules = _modules_after("run", "--help")
    assert code == 0
    assert "orchestrator.commands.run" in modules
    assert _loaded(modules, NOT_FOR_A_RUN) == set()


@pytest.mark.slow
def test_a_whole_run_never_imports_the_simulator(tmp_path: Path) -> None:
    spec = FleetSpec.generate(1, 2)
    scenario = Scenario.model_validate({"options": {"job_duration": {"min_s": 0, "max_s": 0}}})
    with running_simulator(spec, scenario) as sim:
        inventory = write_inventory(tmp_path / "inv.yaml", spec, sim.urls, ca_bundle=None)
        args = [str(inventory), "--yes", "--state", "state.db", "--report-dir", "reports"]
        code, modules = _modules_after("run", *args, cwd=tmp_path)
        rekeys = [len(svm["rekeys"]) for svm in sim.fleet.stats()["svms"].values()]
    assert code == 0 and rekeys == [1, 1]  # the run happened, every target once
    assert {"orchestrator.engine.runner", "orchestrator.observe.reports"} <= modules
    assert _loaded(modules, NOT_FOR_A_RUN) == set()
