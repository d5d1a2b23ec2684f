"""Problems found in an inventory, and their one-line form for the user.

Every problem, whatever found it (the YAML parser, pydantic, a cross-reference check, a
look at the environment or the file system), becomes an `Issue`: a path into the
document and a message `what is wrong (how to fix)`. `format_issue` adds the file, line
and column from the YAML marks: `file:line:col: dotted.path: what is wrong (how to fix)`.
Pydantic's errors are translated here, once.
"""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from orchestrator.config.yaml_marks import Loc, Mark, NodeMarks
from orchestrator.core.inventory_model import REFUSED_KEYS, UNION_TAGS, InventoryModel

_KEY_TAG = "[key]"  # pydantic's loc element for an invalid mapping key
_MAX_SHOWN = 40


@dataclass(frozen=True)
class Issue:
    """One problem at `loc`; `message` reads `what is wrong (how to fix)`."""

    loc: Loc
    message: str
    at_key: bool = False  # point at the key (unknown or refused keys), not at the value
    warning: bool = False
    mark: Mark | None = None  # an explicit position, when the path alone is ambiguous


# -- formatting ------------------------------------------------------------------------


def dotted(loc: Loc) -> str:
    """`("clusters", 2, "svms", 0)` -> `clusters[2].svms[0]`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def locate(marks: dict[Loc, NodeMarks], issue: Issue) -> Mark:
    """The position of the issue: its node, else the nearest enclosing node (missing keys)."""
    if issue.mark is not None:
        return issue.mark
    for end in range(len(issue.loc), -1, -1):
        found = marks.get(issue.loc[:end])
        if found is None:
            continue
        if found.key is not None and (found.composite or (issue.at_key and end == len(issue.loc))):
            return found.key
        return found.value
    return Mark(1, 1)


def format_issue(source: str, marks: dict[Loc, NodeMarks], issue: Issue) -> str:
    """`file:line:col: [warning: ]dotted.path: message` (no path part at the top level)."""
    mark = locate(marks, issue)
    kind = "warning: " if issue.warning else ""
    path = dotted(issue.loc)
    body = f"{path}: {issue.message}" if path else issue.message
    return f"{source}:{mark.line}:{mark.column}: {kind}{body}"


def format_issues(source: str, marks: dict[Loc, NodeMarks], issues: list[Issue]) -> list[str]:
    """The lines of `issues`, in file order, each once."""
    ordered = sorted(issues, key=lambda issue: (locate(marks, issue), issue.message))
    return list(dict.fromkeys(format_issue(source, marks, issue) for issue in ordered))


# -- pydantic --------------------------------------------------------------------------


def issues_from_validation(exc: ValidationError) -> list[Issue]:
    """One Issue per pydantic error, in the user's words."""
    return [_issue(error) for error in exc.errors(include_url=False)]


def _issue(error: ErrorDetails) -> Issue:
    raw_loc = tuple(error["loc"])
    loc = tuple(part for part in raw_loc if part not in UNION_TAGS)
    kind = error["type"]
    if kind == "extra_forbidden":
        return Issue(loc, _unknown_key(loc), at_key=True)
    if kind == "missing":
        return Issue(loc, _missing(str(loc[-1])))
    at_key = _KEY_TAG in raw_loc or (bool(loc) and loc[-1] in REFUSED_KEYS)
    return Issue(loc, _message(error), at_key=at_key)


def _message(error: ErrorDetails) -> str:
    kind, ctx, value = error["type"], error.get("ctx", {}), error["input"]
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind in _EXPECTED:
        expected, fix = _EXPECTED[kind]
        return f"expected {expected}, got {_describe(value)} ({fix})"
    if kind == "literal_error":
        return f"expected {ctx['expected']}, got {_describe(value)} (use one of these values)"
    if kind in _BOUNDS:
        word, key = _BOUNDS[kind]
        return f"must be {word} {ctx[key]:g}, got {_describe(value)} (change the value)"
    if kind == "string_too_short":
        return "must not be empty (give a value or remove the key)"
    return f"{error['msg'].lower()} (see docs/inventory.md)"


_EXPECTED: dict[str, tuple[str, str]] = {
    "string_type": ("a string", "quote the value"),
    "int_type": ("an integer", "write a whole number, without quotes"),
    "int_parsing": ("an integer", "write a whole number, without quotes"),
    "int_from_float": ("an integer", "write a whole number"),
    "bool_type": ("true or false", "write true or false, without quotes"),
    "bool_parsing": ("true or false", "write true or false, without quotes"),
    "float_type": ("a number", "write a number, without quotes"),
    "float_parsing": ("a number", "write a number, without quotes"),
    "list_type": ("a list", "write [a, b] or one '- item' per line"),
    "tuple_type": ("a list", "write [a, b] or one '- item' per line"),
    "dict_type": ("a mapping", "write 'key: value' lines indented beneath it"),
    "model_type": ("a mapping", "write 'key: value' lines indented beneath it"),
    "model_attributes_type": ("a mapping", "write 'key: value' lines indented beneath it"),
}
_BOUNDS: dict[str, tuple[str, str]] = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("greater than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def _describe(value: object) -> str:
    """A short description of a YAML value (never long, and never a mapping's content)."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    shown = repr(value)
    return shown if len(shown) <= _MAX_SHOWN else shown[: _MAX_SHOWN - 3] + "..."


_MISSING_HINTS = {
    "version": "add version: 1 at the top",
    "clusters": "add a clusters: list",
    "name": "add name: NAME",
    "host": "add host: NAME, NAME:PORT or https://NAME:PORT",
    "svms": "add svms: all, or a list of SVM names",
}


def _missing(key: str) -> str:
    return f"missing required key '{key}' ({_MISSING_HINTS.get(key, f'add {key}:')})"


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    allowed = sorted(allowed_keys(loc[:-1]) - REFUSED_KEYS)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}' (did you mean '{close[0]}'?)"
    return f"unknown key '{key}' (allowed here: {', '.join(allowed)})"


# -- which keys a place in the document accepts ----------------------------------------


def allowed_keys(loc: Loc) -> frozenset[str]:
    """The keys the model accepts in the mapping at `loc` (empty if it is not a model)."""
    tp: Any = InventoryModel
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return frozenset()
    model = _concrete(tp)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return frozenset(field.alias or name for name, field in model.model_fields.items())
    return frozenset()


def _step(tp: Any, part: str | int) -> Any:
    """The type one step below `tp`: a model's field, a list's item or a dict's value."""
    tp = _concrete(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        fields = {field.alias or name: field for name, field in tp.model_fields.items()}
        return fields[str(part)].annotation if str(part) in fields else None
    origin, args = get_origin(tp), get_args(tp)
    if origin in (list, tuple) and args:
        return args[0]
    if origin is dict and args:
        return args[1]
    return None


def _concrete(tp: Any) -> Any:
    """Strip Annotated and Optional/unions down to the one container or model inside."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            inner = [_concrete(arg) for arg in get_args(tp)]
            structured = [arg for arg in inner if _is_structured(arg)]
            return structured[0] if structured else tp
        else:
            return tp


def _is_structured(tp: Any) -> bool:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return True
    return get_origin(tp) in (list, tuple, dict)
