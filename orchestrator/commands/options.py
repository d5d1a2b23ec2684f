"""Options shared by several commands: selectors and the run options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator.core.providers import Operation
from orchestrator.core.selectors import Selection, parse_targets_file
from orchestrator.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def selector_options(func: F) -> F:
    """`--cluster GLOB`, `--svm GLOB`, `--tag TAG` (repeatable) and `--targets @FILE`."""
    decorators = [
        click.option(
            "--cluster",
            "cluster_globs",
            multiple=True,
            metavar="GLOB",
            help="Select clusters by name (glob, repeatable).",
        ),
        click.option(
            "--svm",
            "svm_globs",
            multiple=True,
            metavar="GLOB",
            help="Select SVMs by name (glob, repeatable; '-' is the cluster scope).",
        ),
        click.option(
            "--tag",
            "tags",
            multiple=True,
            metavar="TAG",
            help="Select clusters by tag or group tag (repeatable).",
        ),
        click.option(
            "--targets",
            "targets_file",
            metavar="@FILE",
            help="Select the 'cluster/svm' lines of FILE (e.g. a failed.txt).",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def build_selection(
    cluster_globs: tuple[str, ...],
    svm_globs: tuple[str, ...],
    tags: tuple[str, ...],
    targets_file: str | None,
) -> Selection:
    """The Selection for the parsed selector options; a bad targets file is a UserError."""
    return Selection(
        clusters=cluster_globs, svms=svm_globs, tags=tags, targets=_read_targets(targets_file)
    )


def _read_targets(targets_file: str | None) -> Any:
    if targets_file is None:
        return None
    path = Path(targets_file.removeprefix("@"))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--targets: cannot read {path}: {exc.strerror}") from None
    try:
        return parse_targets_file(text)
    except ValueError as exc:
        raise UserError(f"{path}:{exc}") from None


# -- issue 15: --rekey ------------------------------------------------------------------


def rekey_option(func: F) -> F:
    """`--rekey external|internal` (plan, run, emergencies); it wins over `defaults:`."""
    return click.option(
        "--rekey",
        "rekey",
        type=click.Choice([op.value for op in Operation]),
        default=None,
        help="Which rotation: external (re-wrap under the cloud key) or internal (replace "
        "the SVM's own KEK, no key sent) [external; the inventory's defaults: may set it].",
    )(func)


def rekey_from_flag(value: str | None) -> Operation | None:
    """The `--rekey` value as an Operation; None when not given (the inventory decides)."""
    return None if value is None else Operation(value)
