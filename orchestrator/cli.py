"""The command line: parse, wire, map errors to exit codes. No logic lives here.

`main(argv) -> int` dispatches to one click command per subcommand (each in
`orchestrator.commands`), and one handler maps errors to the spec's exit codes.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from orchestrator import __version__
from orchestrator.commands import demo, history, plan, report, resume, run, simulate, validate
from orchestrator.core.exitcodes import ExitCode
from orchestrator.engine.runner import RunInterruptedError
from orchestrator.errors import UserError

EXIT_CODES: tuple[tuple[type[UserError], ExitCode], ...] = (
    (RunInterruptedError, ExitCode.INTERNAL),  # resumable: `ontap-rekey resume RUN_ID`
    (UserError, ExitCode.USAGE),  # the inventory, the ledger, a credential, an option
)
"""The one map from the layers' errors to exit codes (docs/errors.md), first match wins."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ontap-rekey")
def cli() -> None:
    """Rotate the AWS KMS key-encryption keys of NetApp ONTAP SVMs across a fleet."""


for _command in (
    validate.command,
    plan.command,
    run.command,
    resume.command,
    report.command,
    history.command,
    simulate.command,
    demo.command,
):
    cli.add_command(_command)


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
