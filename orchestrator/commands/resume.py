"""`ontap-rekey resume` (not built yet)."""

from __future__ import annotations

import click


@click.command(name="resume")
def command() -> int:
    """Not built yet."""
    raise click.UsageError("'resume' is not built yet")
