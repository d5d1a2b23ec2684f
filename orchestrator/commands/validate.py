"""`ontap-rekey validate` (not built yet)."""

from __future__ import annotations

import click


@click.command(name="validate")
def command() -> int:
    """Not built yet."""
    raise click.UsageError("'validate' is not built yet")
