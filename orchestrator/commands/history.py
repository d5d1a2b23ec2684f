"""`ontap-rekey history` (not built yet)."""

from __future__ import annotations

import click


@click.command(name="history")
def command() -> int:
    """Not built yet."""
    raise click.UsageError("'history' is not built yet")
