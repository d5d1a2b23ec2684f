"""The command line: parse, wire, map errors to exit codes. No logic lives here.

`main(argv) -> int` dispatches to one click command per subcommand (each in
`orchestrator.commands`), and one handler maps errors to the spec's exit codes.

A subcommand's module is imported only when that subcommand runs (`LazyGroup`): a `run`
never loads the simulator `demo` and `simulate` serve (trustme, cryptography, an HTTP
server), nor `history`'s or `report`'s modules, and `--help` lists every command from the
table below without importing any of them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import click

from orchestrator import __version__
from orchestrator.core.exitcodes import ExitCode
from orchestrator.errors import RunInterruptedError, UserError

EXIT_CODES: tuple[tuple[type[UserError], ExitCode], ...] = (
    (RunInterruptedError, ExitCode.INTERNAL),  # resumable: `ontap-rekey resume RUN_ID`
    (UserError, ExitCode.USAGE),  # the inventory, the ledger, a credential, an option
)
"""The one map from the layers' errors to exit codes (docs/errors.md), first match wins."""


@dataclass(frozen=True)
class Subcommand:
    """Where a subcommand's click command lives (`<module>.command`), and the first
    paragraph of its help: what `--help` lists (tests/test_cli_lazy.py holds each to its
    command's docstring)."""

    module: str
    summary: str


COMMANDS: dict[str, Subcommand] = {
    "validate": Subcommand(
        "orchestrator.commands.validate",
        "Check INVENTORY offline: schema, references, environment variables, files.",
    ),
    "plan": Subcommand(
        "orchestrator.commands.plan",
        "Dry run: what would be rekeyed, what is not ready and why, how long it would take.",
    ),
    "run": Subcommand(
        "orchestrator.commands.run",
        "Rekey the selected targets: canary, waves, retries, verification.",
    ),
    "resume": Subcommand(
        "orchestrator.commands.resume",
        "Continue an interrupted run: settle in-flight rekeys, then carry on.",
    ),
    "report": Subcommand(
        "orchestrator.commands.report", "Render the report of a past run RUN_ID from the ledger."
    ),
    "history": Subcommand(
        "orchestrator.commands.history",
        "Per target, the last successful rotation (run, time, key id) across all runs.",
    ),
    "simulate": Subcommand(
        "orchestrator.commands.simulate",
        "Serve a simulated fleet of ONTAP clusters on loopback until interrupted.",
    ),
    "demo": Subcommand(
        "orchestrator.commands.demo",
        "Rotate a simulated fleet end to end: simulate, plan, run with a canary, report.",
    ),
}
"""Every subcommand, by name."""


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (`get_command`).

    Importing every command up front cost a `run` ~0.4 s of CPU before its first request
    (the simulator alone ~0.25 s); click resolves a subcommand only through
    `get_command`/`list_commands`, so the same commands, options and errors result."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)  # click's own order: sorted names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        command: click.Command = importlib.import_module(entry.module).command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The `Commands:` section of `--help`, click's rows written from the table's
        summaries (shortened by click's own rule) instead of from imported commands."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, _stand_in(name).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _stand_in(name: str) -> click.Command:
    """A command with only the subcommand's help summary: click shortens it for the
    listing exactly as it shortens the real command's help (first paragraph only)."""
    return click.Command(name, help=COMMANDS[name].summary)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ontap-rekey")
def cli() -> None:
    """Rotate the AWS KMS key-encryption keys of NetApp ONTAP SVMs across a fleet."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run `ontap-rekey` with `argv` and return its exit code."""
    try:
        result = cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except UserError as exc:
        for line in exc.lines:
            click.echo(f"error: {line}" if not _has_location(line) else line, err=True)
        return int(exit_code_for(exc))
    except click.exceptions.Abort:
        click.echo("aborted.", err=True)
        return int(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.USAGE)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except Exception as exc:  # the last line of defence: short message, traceback to the log
        _log_internal_error(exc)
        click.echo(f"internal error: {type(exc).__name__}: {exc}", err=True)
        return int(ExitCode.INTERNAL)
    return int(result) if isinstance(result, int) else int(ExitCode.OK)


def exit_code_for(exc: UserError) -> ExitCode:
    """The exit code of a user-facing error, by its class."""
    return next(code for kind, code in EXIT_CODES if isinstance(exc, kind))


def _has_location(line: str) -> bool:
    """Inventory errors already start with `file:line:col:`."""
    head = line.split(": ", 1)[0]
    return head.count(":") >= 2


def _log_internal_error(exc: BaseException) -> None:
    import structlog

    from orchestrator.observe import events

    structlog.get_logger().exception(events.INTERNAL_ERROR, error_type=type(exc).__name__)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
