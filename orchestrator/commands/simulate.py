"""`ontap-rekey simulate` (not built yet)."""

from __future__ import annotations

import click


@click.command(name="simulate")
def command() -> int:
    """Not built yet."""
    raise click.UsageError("'simulate' is not built yet")
