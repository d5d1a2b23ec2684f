"""`ontap-rekey run` (not built yet)."""

from __future__ import annotations

import click


@click.command(name="run")
def command() -> int:
    """Not built yet."""
    raise click.UsageError("'run' is not built yet")
