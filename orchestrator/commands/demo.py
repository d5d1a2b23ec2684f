"""`ontap-rekey demo` (not built yet)."""

from __future__ import annotations

import click


@click.command(name="demo")
def command() -> int:
    """Not built yet."""
    raise click.UsageError("'demo' is not built yet")
