"""Load an inventory file: the one place YAML is read, checked and resolved.

    bytes --parse_yaml--> data + marks --InventoryModel--> model --resolve--> Inventory
                 \\--------- checks (references, environment, files) ---------/

Every problem becomes an `Issue`; all of them are reported at once, one line each, as
`file:line:col: dotted.path: what is wrong (how to fix)`, in an `InventoryError` (exit 2).
Warnings (a password file others may read, an unused group) do not stop the load; they
come back in `LoadResult.warnings` for the command to print.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from orchestrator.config import checks, key_checks
from orchestrator.config.issues import Issue, format_issues, issues_from_validation
from orchestrator.config.resolve import resolve
from orchestrator.config.yaml_marks import ParsedYaml, YamlSyntaxError, parse_yaml
from orchestrator.core.inventory import Inventory
from orchestrator.core.inventory_model import InventoryModel
from orchestrator.errors import InventoryError

_EMPTY_HINT = "start with version: 1 and a clusters: list; see docs/inventory.md"


@dataclass(frozen=True)
class LoadResult:
    """A valid inventory, the warnings found on the way, and every group it defines."""

    inventory: Inventory
    warnings: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


def load_inventory(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    check_files: bool = True,
    check_env: bool = True,
) -> Inventory:
    """The resolved inventory at `path`; raises InventoryError listing every problem.

    See `load` for the parameters. Warnings are dropped: use `load` to show them.
    """
    return load(path, environ=environ, check_files=check_files, check_env=check_env).inventory


def load(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    check_files: bool = True,
    check_env: bool = True,
) -> LoadResult:
    """Read, check and resolve the inventory at `path`.

    `environ` (default `os.environ`) is where password_env / token_env must be set; only
    their presence is checked, never their value. `check_files` opens (never reads) the
    password, certificate, key and CA files; relative paths start at the inventory's
    folder. With `check_env=False` unset variables are warnings instead of errors.
    Raises InventoryError with one line per problem, all at once.
    """
    source = str(path)
    raw = _read(path)
    parsed = _parse(raw, source)
    data = cast(dict[str, Any], parsed.data)  # _parse checked it is a mapping
    model, issues = _validate(data)
    issues += _checks(parsed, data, path, environ, check_files=check_files, check_env=check_env)
    errors = [issue for issue in issues if not issue.warning]
    if errors or model is None:
        raise InventoryError(*format_issues(source, parsed.marks, errors))
    inventory = resolve(model, path=path.absolute(), sha256=hashlib.sha256(raw).hexdigest())
    warnings = format_issues(source, parsed.marks, [i for i in issues if i.warning])
    return LoadResult(inventory, tuple(warnings), tuple(model.groups))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read the inventory: {exc.strerror}") from None


def _parse(raw: bytes, source: str) -> ParsedYaml:
    """The YAML of the file, which must be a mapping; InventoryError otherwise."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InventoryError(
            f"{source}:{line}:1: the file is not UTF-8 text (save it as UTF-8)"
        ) from None
    try:
        parsed = parse_yaml(text)
    except YamlSyntaxError as exc:
        mark = exc.mark
        raise InventoryError(
            f"{source}:{mark.line}:{mark.column}: invalid YAML: {exc.problem} "
            "(fix the syntax; check indentation and quotes)"
        ) from None
    if parsed.data is None:
        raise InventoryError(f"{source}:1:1: the inventory is empty ({_EMPTY_HINT})")
    if not isinstance(parsed.data, dict):
        raise InventoryError(f"{source}:1:1: the inventory is not a mapping ({_EMPTY_HINT})")
    return parsed


def _validate(data: dict[str, Any]) -> tuple[InventoryModel | None, list[Issue]]:
    try:
        return InventoryModel.model_validate(data), []
    except ValidationError as exc:
        return None, issues_from_validation(exc)


def _checks(
    parsed: ParsedYaml,
    data: dict[str, Any],
    path: Path,
    environ: Mapping[str, str] | None,
    *,
    check_files: bool,
    check_env: bool,
) -> list[Issue]:
    """Everything beyond the schema: duplicates, references, environment, files."""
    env = os.environ if environ is None else environ
    issues = [
        *checks.duplicate_key_issues(parsed.duplicate_keys),
        *checks.reference_issues(data, parsed.marks),
        *checks.unused_group_warnings(data),
        *checks.env_issues(data, env, as_warnings=not check_env),
        *key_checks.key_shape_issues(data),  # issue 15
    ]
    if check_files:
        issues += checks.file_issues(data, path.absolute().parent)
    return issues
