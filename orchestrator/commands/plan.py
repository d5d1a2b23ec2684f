"""`ontap-rekey plan` (not built yet)."""

from __future__ import annotations

import click


@click.command(name="plan")
def command() -> int:
    """Not built yet."""
    raise click.UsageError("'plan' is not built yet")
