"""`ontap-rekey report` (not built yet)."""

from __future__ import annotations

import click


@click.command(name="report")
def command() -> int:
    """Not built yet."""
    raise click.UsageError("'report' is not built yet")
