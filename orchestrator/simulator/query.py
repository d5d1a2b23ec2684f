"""ONTAP collection semantics: `fields=`, query filters, `order_by`, paging.

Filters use ONTAP's query syntax on any known field: `*` wildcard, `!` negation, `|` OR,
`<`, `>`, `<=`, `>=` and `a..b` ranges (numeric when both sides are numbers). Matching is
case-sensitive. Patterns are compiled once and cached, never per request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

from orchestrator.simulator.errors import (
    ApiError,
    invalid_value,
    out_of_range,
    unexpected_argument,
)

# Parameters every collection accepts that are not filters. `start.index` is the
# simulator's paging cursor, carried by `_links.next.href`.
RESERVED = frozenset(
    {
        "fields",
        "max_records",
        "return_timeout",
        "order_by",
        "ignore_unknown_fields",
        "return_records",
        "start.index",
    }
)
MAX_RETURN_TIMEOUT = 120
DEFAULT_GET_RETURN_TIMEOUT = 15

Schema = Mapping[str, "Schema | None"]
Predicate = Callable[[str], bool]


@dataclass(frozen=True)
class Resource:
    """What a record type offers: its field tree, its key fields, its advanced fields."""

    schema: Schema
    keys: tuple[str, ...]
    advanced: frozenset[str] = frozenset()

    def knows(self, path: str) -> bool:
        """True if the dotted path names a field of this resource."""
        node: Schema | None = self.schema
        for part in path.split("."):
            if node is None or part not in node:
                return False
            node = node[part]
        return True


@dataclass(frozen=True)
class Selection:
    """Which fields to return: `paths` (None = every non-advanced field) plus the keys."""

    paths: tuple[str, ...] | None
    advanced: bool  # whether the record must be built with the advanced fields


class Params:
    """The query string of one request, parsed once."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.values = dict(pairs)
        self.ignore_unknown = self.values.get("ignore_unknown_fields", "").lower() == "true"

    def get(self, name: str) -> str | None:
        """The last value given for `name`."""
        return self.values.get(name)

    def int_value(self, name: str, default: int, low: int, high: int | None = None) -> int:
        """An integer parameter, clamped to [low, high]; 400 (262197) if not an integer."""
        raw = self.values.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid_value(name, f'"{raw}" is an invalid value for field "{name}"') from None
        value = max(low, value)
        return value if high is None else min(high, value)

    def bounded(self, name: str, default: int, low: int, high: int) -> int:
        """An integer parameter that must lie in [low, high]: ONTAP's 400 otherwise."""
        raw = self.values.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise out_of_range(name, raw, low, high) from None
        if not low <= value <= high:
            raise out_of_range(name, raw, low, high)
        return value

    def return_timeout(self, default: int) -> int:
        """`return_timeout`, 0..120 (400, code 262197, target `return_timeout` otherwise)."""
        return self.bounded("return_timeout", default, 0, MAX_RETURN_TIMEOUT)

    def filters(self) -> Iterable[tuple[str, str]]:
        """The (field, pattern) pairs that are filters."""
        return ((k, v) for k, v in self.values.items() if k not in RESERVED)


def unknown_field(name: str) -> ApiError:
    """ONTAP's 400 for a `fields=` entry the record does not have (262197, target fields)."""
    return invalid_value("fields", f'The value "{name}" is invalid for field "fields"')


def unknown_order(name: str) -> ApiError:
    """The 400 for an `order_by` on a field the record does not have."""
    return invalid_value("order_by", f'The value "{name}" is invalid for field "order_by"')


def selection(params: Params, resource: Resource, *, collection: bool) -> Selection:
    """Parse `fields=`: absent -> keys (collection) or all defaults (instance);
    `*` -> all non-advanced; `**` -> everything; names -> keys plus those names."""
    raw = params.get("fields")
    if not raw:
        return Selection(resource.keys if collection else None, advanced=False)
    names = _split(raw)
    if "**" in names:
        return Selection(None, advanced=True)
    named = tuple(n for n in names if n != "*")
    for name in named:
        if not resource.knows(name) and not params.ignore_unknown:
            raise unknown_field(name)
    named = tuple(n for n in named if resource.knows(n))
    advanced = any(n.split(".")[0] in resource.advanced for n in named)
    if "*" in names:
        return (
            Selection(None, advanced=advanced)
            if not advanced
            else Selection((*_default_paths(resource), *named), advanced=True)
        )
    return Selection((*resource.keys, *named), advanced=advanced)


def _default_paths(resource: Resource) -> tuple[str, ...]:
    return tuple(name for name in resource.schema if name not in resource.advanced)


@lru_cache(maxsize=512)
def _split(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def project(record: Mapping[str, Any], paths: tuple[str, ...] | None) -> dict[str, Any]:
    """Keep only the dotted `paths` of a record (all of it when None), plus `_links`."""
    if paths is None:
        return dict(record)
    out: dict[str, Any] = {}
    for path in paths:
        _copy(record, out, path.split("."))
    if "_links" in record:
        out["_links"] = record["_links"]
    return out


def _copy(source: Any, target: dict[str, Any], parts: list[str]) -> None:
    head, rest = parts[0], parts[1:]
    if not isinstance(source, Mapping) or head not in source:
        return
    value = source[head]
    if not rest:
        target[head] = value
    elif isinstance(value, list):
        items = target.setdefault(head, [{} for _ in value])
        for item, sub in zip(value, items, strict=True):
            _copy(item, sub, rest)
    else:
        _copy(value, target.setdefault(head, {}), rest)


def needs_advanced(params: Params, resource: Resource) -> bool:
    """True if a filter names an advanced field (so records need them)."""
    return any(name.split(".")[0] in resource.advanced for name, _ in params.filters())


def compile_filters(params: Params, resource: Resource) -> list[tuple[list[str], Predicate]]:
    """The request's filters; 400 for an unknown field unless ignore_unknown_fields."""
    compiled = []
    for name, pattern in params.filters():
        if not resource.knows(name):
            if params.ignore_unknown:
                continue
            raise unexpected_argument(name)
        compiled.append((name.split("."), predicate(pattern)))
    return compiled


def matches(record: Mapping[str, Any], filters: list[tuple[list[str], Predicate]]) -> bool:
    """True if the record passes every filter (a list field passes if any item does)."""
    for parts, test in filters:
        values = list(_values(record, parts))
        if not any(test(v) for v in values) and not (not values and test("")):
            return False
    return True


def _values(source: Any, parts: list[str]) -> Iterable[str]:
    if isinstance(source, list):
        for item in source:
            yield from _values(item, parts)
        return
    if not parts:
        yield _text(source)
        return
    if isinstance(source, Mapping) and parts[0] in source:
        yield from _values(source[parts[0]], parts[1:])


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@lru_cache(maxsize=4096)
def predicate(pattern: str) -> Predicate:
    """Compile one ONTAP query value (`a|b*|!c|<5|1..3`) into a test on a field's text."""
    tests = [_alternative(alt) for alt in pattern.split("|")]
    return lambda value: any(test(value) for test in tests)


def _alternative(alt: str) -> Predicate:
    if alt.startswith("!"):
        inner = _alternative(alt[1:])
        return lambda value: not inner(value)
    for op in ("<=", ">=", "<", ">"):
        if alt.startswith(op) and len(alt) > len(op):
            return _comparison(op, alt[len(op) :])
    if ".." in alt:
        low, high = alt.split("..", 1)
        above, below = _comparison(">=", low), _comparison("<=", high)
        return lambda value: above(value) and below(value)
    if "*" in alt:
        regex = re.compile("^" + ".*".join(re.escape(p) for p in alt.split("*")) + "$", re.S)
        return lambda value: regex.match(value) is not None
    return lambda value: value == alt


def _comparison(op: str, bound: str) -> Predicate:
    def test(value: str) -> bool:
        left: float | str
        right: float | str
        try:
            left, right = float(value), float(bound)
        except ValueError:
            left, right = value, bound
        return {
            "<": left < right,  # type: ignore[operator]
            ">": left > right,  # type: ignore[operator]
            "<=": left <= right,  # type: ignore[operator]
            ">=": left >= right,  # type: ignore[operator]
        }[op]

    return test


def order(records: list[dict[str, Any]], params: Params, resource: Resource) -> None:
    """Sort in place by `order_by` (`field [asc|desc]`, comma-separated, last key first)."""
    raw = params.get("order_by")
    if not raw:
        return
    for clause in reversed(_split(raw)):
        name, _, direction = clause.partition(" ")
        if not resource.knows(name):
            if params.ignore_unknown:
                continue
            raise unknown_order(name)
        parts = name.split(".")
        records.sort(
            key=lambda r: next(iter(_values(r, parts)), ""), reverse=direction.strip() == "desc"
        )


def page(
    records: list[dict[str, Any]],
    params: Params,
    path: str,
    *,
    trailing_empty: bool,
    record_cost_s: float = 0.0,
) -> dict[str, Any]:
    """One page of a collection answer, with `_links.next` when records remain (or,
    with `trailing_empty`, after a full last page: ONTAP may end with an empty page).

    ONTAP also cuts a page when `return_timeout` (GET default 15 s) runs out: with a
    `record_cost_s`, a page holds what fits in that time (at least one record)."""
    wait = params.return_timeout(DEFAULT_GET_RETURN_TIMEOUT)
    start = params.int_value("start.index", 0, 0)
    max_records = params.int_value("max_records", 0, 0)
    if record_cost_s > 0:
        fits = max(1, int(wait / record_cost_s))
        max_records = min(max_records, fits) if max_records else fits
    end = start + max_records if max_records else len(records)
    chunk = records[start:end]
    body: dict[str, Any] = {"records": chunk, "num_records": len(chunk)}
    links: dict[str, Any] = {"self": {"href": _href(path, params.pairs)}}
    full_last = trailing_empty and max_records and len(chunk) == max_records
    if end < len(records) or (full_last and end == len(records)):
        links["next"] = {"href": _href(path, _with_start(params.pairs, end))}
    body["_links"] = links
    return body


def _with_start(pairs: list[tuple[str, str]], start: int) -> list[tuple[str, str]]:
    return [(k, v) for k, v in pairs if k != "start.index"] + [("start.index", str(start))]


def _href(path: str, pairs: list[tuple[str, str]]) -> str:
    return f"{path}?{urlencode(pairs, safe='*!|,.')}" if pairs else path
