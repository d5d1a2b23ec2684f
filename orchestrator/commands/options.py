"""Options shared by several commands: selectors and the run options."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator.core.inventory import Inventory
from orchestrator.core.providers import Operation
from orchestrator.core.selectors import (
    Selection,
    TargetsFile,
    read_targets_file,
    selection_problems,
)
from orchestrator.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


def selector_options(func: F) -> F:
    """`--cluster GLOB`, `--svm GLOB`, `--tag TAG`, `--exclude-cluster GLOB`,
    `--exclude-svm GLOB` (repeatable) and `--targets @FILE`."""
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
            "--exclude-cluster",
            "exclude_cluster_globs",
            multiple=True,
            metavar="GLOB",
            help="Leave out clusters by name (glob, repeatable; wins over every selector).",
        ),
        click.option(
            "--exclude-svm",
            "exclude_svm_globs",
            multiple=True,
            metavar="GLOB",
            help="Leave out SVMs by name (glob, repeatable; wins over every selector).",
        ),
        click.option(
            "--targets",
            "targets_file",
            metavar="@FILE",
            help="Select the 'cluster/svm' lines of FILE (e.g. a failed.txt); "
            "'!cluster/svm' lines leave targets out, 'cluster/*' is the whole cluster.",
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
    exclude_cluster_globs: tuple[str, ...] = (),
    exclude_svm_globs: tuple[str, ...] = (),
) -> Selection:
    """The Selection for the parsed selector options; a bad targets file is a UserError."""
    parsed = _read_targets(targets_file)
    return Selection(
        clusters=cluster_globs,
        svms=svm_globs,
        tags=tags,
        targets=parsed.selected if parsed else None,
        exclude_clusters=exclude_cluster_globs,
        exclude_svms=exclude_svm_globs,
        excluded_targets=parsed.excluded if parsed else frozenset(),
        targets_file=targets_file.removeprefix("@") if targets_file else None,
    )


def selection_from(options: Mapping[str, Any]) -> Selection:
    """The Selection of a command's parsed options (the names `selector_options` gives)."""
    return build_selection(
        options["cluster_globs"],
        options["svm_globs"],
        options["tags"],
        options["targets_file"],
        options.get("exclude_cluster_globs", ()),
        options.get("exclude_svm_globs", ()),
    )


def check_selection(selection: Selection, inventory: Inventory) -> None:
    """Exit 2, one line per selector, when a selector matches nothing in the inventory."""
    problems = selection_problems(selection, inventory)
    if problems:
        raise UserError(*problems)


def _read_targets(targets_file: str | None) -> TargetsFile | None:
    if targets_file is None:
        return None
    path = Path(targets_file.removeprefix("@"))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--targets: cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"--targets: {path} is not UTF-8 text") from None
    try:
        return read_targets_file(text)
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
