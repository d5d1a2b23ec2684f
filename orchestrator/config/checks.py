"""Checks that no single field can make: cross references, the environment, the files.

They read the raw YAML data (not the validated model) on purpose: they still run when
the schema has errors elsewhere, so the user sees every problem at once. Each check is
defensive about shapes; a wrong shape is the schema's to report.
"""

from __future__ import annotations

import difflib
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from orchestrator.config.issues import Issue
from orchestrator.config.resolve import resolve_path
from orchestrator.config.yaml_marks import Loc, Mark, NodeMarks
from orchestrator.core.inventory_model import ENV_NAME

_ENV_KEYS = ("password_env", "token_env")
_SECRET_FILES = ("password_file", "client_key")  # warn when others may read them
_AUTH_FILES = ("password_file", "client_cert", "client_key")
_COMMAND_KEYS = ("password_command", "token_command")
_OPEN_TO_OTHERS = 0o077  # group or others may read, write or execute: ssh's rule


# -- walking the raw data --------------------------------------------------------------


def _mapping(value: object) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _sequence(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _clusters(data: Mapping[str, Any]) -> Iterator[tuple[int, dict[Any, Any]]]:
    for index, cluster in enumerate(_sequence(data.get("clusters"))):
        if isinstance(cluster, dict):
            yield index, cluster


def settings_blocks(data: Mapping[str, Any]) -> Iterator[tuple[Loc, dict[Any, Any]]]:
    """`defaults`, every group and every cluster: the mappings that may hold auth and tls."""
    if isinstance(data.get("defaults"), dict):
        yield ("defaults",), data["defaults"]
    for name, group in _mapping(data.get("groups")).items():
        if isinstance(group, dict):
            yield ("groups", str(name)), group
    for index, cluster in _clusters(data):
        yield ("clusters", index), cluster


def _line(marks: dict[Loc, NodeMarks], loc: Loc) -> int:
    found = marks.get(loc)
    return found.value.line if found else 0


# -- YAML ------------------------------------------------------------------------------


def duplicate_key_issues(duplicates: tuple[tuple[Loc, Mark, Mark], ...]) -> list[Issue]:
    """A key written twice in one mapping: YAML would silently keep the last one."""
    return [
        Issue(
            loc,
            f"duplicate key '{loc[-1]}', first on line {first.line} "
            "(YAML keeps only the last one; remove or merge one of them)",
            mark=again,
        )
        for loc, first, again in duplicates
    ]


# -- cross references ------------------------------------------------------------------


def reference_issues(data: Mapping[str, Any], marks: dict[Loc, NodeMarks]) -> list[Issue]:
    """Duplicate cluster names and SVMs, undefined groups, clusters without any auth."""
    return [
        *_duplicate_clusters(data, marks),
        *(issue for index, c in _clusters(data) for issue in _duplicate_svms(index, c, marks)),
        *_undefined_groups(data),
        *_missing_auth(data),
    ]


def _duplicate_clusters(data: Mapping[str, Any], marks: dict[Loc, NodeMarks]) -> Iterator[Issue]:
    first: dict[str, Loc] = {}
    for index, cluster in _clusters(data):
        name, loc = cluster.get("name"), ("clusters", index, "name")
        if not isinstance(name, str):
            continue
        if name in first:
            yield Issue(
                loc,
                f"duplicate cluster name '{name}', first on line "
                f"{_line(marks, first[name])} (names must be unique: rename or merge)",
            )
        first.setdefault(name, loc)


def _duplicate_svms(
    index: int, cluster: dict[Any, Any], marks: dict[Loc, NodeMarks]
) -> Iterator[Issue]:
    first: dict[str, Loc] = {}
    for position, entry in enumerate(_sequence(cluster.get("svms"))):
        name, loc = _svm_name(entry, ("clusters", index, "svms", position))
        if name is None:
            continue
        if name in first:
            yield Issue(
                loc,
                f"duplicate SVM '{name}' in cluster, first on line "
                f"{_line(marks, first[name])} (list each SVM once)",
            )
        first.setdefault(name, loc)


def _svm_name(entry: object, loc: Loc) -> tuple[str | None, Loc]:
    if isinstance(entry, str):
        return entry, loc
    name = _mapping(entry).get("name")
    return (name, (*loc, "name")) if isinstance(name, str) else (None, loc)


def _undefined_groups(data: Mapping[str, Any]) -> Iterator[Issue]:
    defined = [str(name) for name in _mapping(data.get("groups"))]
    for index, cluster in _clusters(data):
        for position, group in enumerate(_sequence(cluster.get("groups"))):
            if isinstance(group, str) and group not in defined:
                loc = ("clusters", index, "groups", position)
                yield Issue(loc, f"undefined group '{group}' ({_group_hint(group, defined)})")


def _group_hint(group: str, defined: list[str]) -> str:
    close = difflib.get_close_matches(group, defined, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "define it under groups:" if defined else "there is no groups: section"


def _missing_auth(data: Mapping[str, Any]) -> Iterator[Issue]:
    groups = _mapping(data.get("groups"))
    if _has_auth(data.get("defaults")):
        return
    for index, cluster in _clusters(data):
        names = [g for g in _sequence(cluster.get("groups")) if isinstance(g, str)]
        if _has_auth(cluster) or any(_has_auth(groups.get(g)) for g in names):
            continue
        yield Issue(
            ("clusters", index),
            f"cluster '{cluster.get('name')}' has no auth "
            "(set auth: on the cluster, on one of its groups or under defaults:)",
        )


def _has_auth(block: Any) -> bool:
    """`auth:` set at this level; `auth: null` (or an empty `auth:`) is none, as the
    resolver reads it."""
    return _mapping(block).get("auth") is not None


def unused_group_warnings(data: Mapping[str, Any]) -> list[Issue]:
    """Groups no cluster names: harmless, but often a typo on the cluster side."""
    # Only names count: a malformed `groups:` entry (a list, a mapping) is the schema's
    # error to report, not a reason to crash here.
    used = {g for _, c in _clusters(data) for g in _sequence(c.get("groups")) if isinstance(g, str)}
    return [
        Issue(
            ("groups", str(name)),
            "group is not used by any cluster (remove it or use it)",
            at_key=True,
            warning=True,
        )
        for name in _mapping(data.get("groups"))
        if name not in used
    ]


# -- environment -----------------------------------------------------------------------


def env_issues(
    data: Mapping[str, Any], environ: Mapping[str, str], *, as_warnings: bool = False
) -> list[Issue]:
    """Every password_env / token_env variable that is unset or empty (values never read)."""
    issues = []
    for loc, block in settings_blocks(data):
        auth = _mapping(block.get("auth"))
        for key in _ENV_KEYS:
            problem = _env_problem(auth.get(key), environ)
            if problem:
                issues.append(Issue((*loc, "auth", key), problem, warning=as_warnings))
    return issues


def _env_problem(name: object, environ: Mapping[str, str]) -> str | None:
    if not isinstance(name, str) or not ENV_NAME.match(name):
        return None  # the schema reports a bad name
    if name not in environ:
        return f"environment variable {name} is not set (export {name} before running)"
    if not environ[name]:
        return f"environment variable {name} is empty (export {name} with the secret)"
    return None


# -- files -----------------------------------------------------------------------------


def file_issues(data: Mapping[str, Any], base_dir: Path) -> list[Issue]:
    """Unreadable cert / key / password / CA files; password files others may read."""
    issues = []
    for loc, block in settings_blocks(data):
        files = [("auth", key, _mapping(block.get("auth")).get(key)) for key in _AUTH_FILES]
        files.append(("tls", "ca_bundle", _mapping(block.get("tls")).get("ca_bundle")))
        for section, key, text in files:
            if isinstance(text, str) and text.strip():
                issue = _file_issue((*loc, section, key), resolve_path(base_dir, text), key)
                issues.extend([issue] if issue else [])
        issues += _program_issues(loc, _mapping(block.get("auth")), base_dir)
    return issues


def _program_issues(loc: Loc, auth: Mapping[str, Any], base_dir: Path) -> list[Issue]:
    """A `*_command` whose program is not there (found on PATH, or at its path)."""
    issues = []
    for key in _COMMAND_KEYS:
        argv = auth.get(key)
        if not isinstance(argv, list) or not argv or not isinstance(argv[0], str):
            continue  # the schema reports a bad argv
        program = argv[0]
        if "/" in program:
            path = resolve_path(base_dir, program)
            found = path.is_file() and os.access(path, os.X_OK)
        else:
            found = bool(program.strip()) and shutil.which(program) is not None
        if not found:
            issues.append(
                Issue(
                    (*loc, "auth", key, 0),
                    f"program {program!r} not found or not executable "
                    "(a bare name is looked up on PATH, a path starts at the inventory's folder)",
                )
            )
    return issues


def _file_issue(loc: Loc, path: Path, key: str) -> Issue | None:
    try:
        with path.open("rb"):  # opened to prove it is readable; the content is never read
            info = path.stat()
    except FileNotFoundError:
        return Issue(
            loc, f"file not found: {path} (relative paths start at the inventory's folder)"
        )
    except OSError as exc:
        return Issue(loc, f"cannot read {path}: {exc.strerror} (check the path and permissions)")
    mode = stat.S_IMODE(info.st_mode)
    if not stat.S_ISREG(info.st_mode):
        return Issue(loc, f"not a regular file: {path} (give the path of a file)")
    if key in _SECRET_FILES and mode & _OPEN_TO_OTHERS:
        return Issue(
            loc, f"mode {mode:04o} lets group or others read it (chmod 600 {path})", warning=True
        )
    return None
