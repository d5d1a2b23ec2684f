"""The strict JSON shapes of ONTAP's records (pydantic), for the records that are not the
usual shape.

`orchestrator.ontap.models` reads the usual answers directly and comes here only for
anything else (`_validated`): the model says what is wrong, in one line naming the field
(`parse`). Imported on first use, not with the models: a run whose answers are all well
formed never defines these classes (~35 ms of every process's start-up).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
)
from pydantic.fields import FieldInfo

from orchestrator.core.providers import PROVIDERS, Provider
from orchestrator.ontap.models import GCP_RING_FIELDS, MalformedRecord, as_mapping, normalise_code

# -- the JSON shapes ---------------------------------------------------------------------


def _iso_time(value: object, info: ValidationInfo) -> datetime | None:
    if value is not None and not isinstance(value, str):
        got = type(value).__name__
        raise MalformedRecord(f"field {info.field_name!r}: expected a string, got {got}")
    if not value:
        return None
    # ONTAP writes ISO-8601 with an offset ("2024-05-01T10:00:00-04:00"); 3.11 parses "Z" too.
    return datetime.fromisoformat(value)


Text = Annotated[str, Field(min_length=1)]  # required, non-empty
Code = Annotated[str | None, BeforeValidator(normalise_code)]
Time = Annotated[datetime | None, BeforeValidator(_iso_time)]


class Wire(BaseModel):
    """A JSON object as ONTAP sends it: strict types, unknown fields ignored."""

    # built on first use: the fast path below reads the usual answers without them
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True, defer_build=True)


class _Version(Wire):
    generation: int
    major: int
    minor: int
    full: str | None = None


class ClusterWire(Wire):
    version: _Version
    name: Text
    uuid: Text


class _Svm(Wire):
    name: str | None = None
    uuid: str | None = None


class _SvmName(Wire):
    name: str | None = None


class _Node(Wire):
    name: Text


class NodeReachabilityWire(Wire):
    node: _Node
    reachable: bool
    message: str | None = None
    code: Code = None


class _State(Wire):
    cluster_state: bool | None = None
    code: Code = None
    message: str | None = None


class _Reachability(Wire):
    reachable: bool | None = None
    message: str | None = None


class KeyStoreWire(Wire):
    svm: _SvmName | None = None
    uuid: Text
    scope: str | None = None
    type: Text
    enabled: bool | None = None
    state: str | None = None


class JobWire(Wire):
    error: dict[str, Any] | None = None  # read only where `code`/`message` say nothing
    code: Code = None
    message: str | None = None
    uuid: Text
    state: Text
    description: str | None = None
    start_time: Time = None
    end_time: Time = None
    svm: _SvmName | None = None


class _JobRef(Wire):
    uuid: Text


class AnswerWire(Wire):
    job: _JobRef | None = None


def _config_wire(provider: Provider) -> type[Wire]:
    """The JSON shape of one configuration of the provider's collection."""
    spec = PROVIDERS[provider]
    fields: dict[str, Any] = {
        "svm": (_Svm | None, None),
        "state": (_State | None, None),
        spec.reachability_field: (_Reachability | None, None),
        "uuid": (Text, ...),
        "scope": (str | None, None),
        spec.key_field: (Text, ...),
    }
    if provider is Provider.GCP:
        fields |= dict.fromkeys(GCP_RING_FIELDS, (str | None, None))
    if provider is Provider.AWS:
        fields["region"] = (str | None, None)
    fields["ekmip_reachability"] = (list[NodeReachabilityWire] | None, None)
    return create_model(f"_{provider.name.title()}Config", __base__=Wire, **fields)


CONFIG_WIRES = {provider: _config_wire(provider) for provider in PROVIDERS}

W = TypeVar("W", bound=Wire)


def parse(
    wire: type[W], data: object, what: str, names: Mapping[tuple[str, ...], str] | None = None
) -> W:
    """`data` validated as `wire`, or MalformedRecord naming the first wrong field.

    `what` names the record itself, `names` objects inside it named otherwise than by
    their path (`cluster.version`)."""
    record = as_mapping(data, what)
    try:
        return wire.model_validate(record)
    except ValidationError as exc:
        raise _malformed(wire, exc, what, names or {}) from None


# -- pydantic's errors as the one-line messages of the hand-written parsers -------------


def _malformed(
    wire: type[Wire], exc: ValidationError, what: str, names: Mapping[tuple[str, ...], str]
) -> ValueError:
    error = exc.errors(include_url=False)[0]  # the first field in the record's order
    cause = error.get("ctx", {}).get("error")
    if error["type"] == "value_error" and isinstance(cause, ValueError):
        return cause  # a code or a time: the validator's own message
    path = tuple(part for part in error["loc"] if isinstance(part, str))
    missing = error["type"] == "missing"
    got = type(None if missing else error.get("input")).__name__
    field = _field_at(wire, path)
    if error["type"] in ("model_type", "dict_type") or (missing and _wire_in(field) is not None):
        return MalformedRecord(
            f"{names.get(path, '.'.join(path)) or what}: expected a JSON object, got {got}"
        )
    if error["type"] == "list_type":
        return MalformedRecord(f"{path[-1]}: expected a list")
    return MalformedRecord(_field_message(field, path, got, missing or error.get("input") is None))


def _field_message(field: FieldInfo | None, path: tuple[str, ...], got: str, absent: bool) -> str:
    key = path[-1] if path else ""
    kind = None if field is None else field.annotation
    if field is not None and field.is_required():
        if kind is bool and absent:
            return f"{'.'.join(path[:-1])}: missing {key!r}"
        if kind is bool:
            return f"field {key!r}: expected a boolean, got {got}"
        if kind is int:
            return f"missing or invalid integer field {key!r}"
        return f"missing or invalid string field {key!r}"
    if bool in get_args(kind):
        return f"field {key!r}: expected a boolean, got {got}"
    return f"field {key!r}: expected a string, got {got}"


def _field_at(wire: type[Wire], path: tuple[str, ...]) -> FieldInfo | None:
    """The field of `wire` at `path` (list items stand for their list)."""
    field: FieldInfo | None = None
    current: type[Wire] | None = wire
    for part in path:
        if current is None or part not in current.model_fields:
            return None
        field = current.model_fields[part]
        current = _wire_in(field)
    return field


def _wire_in(field: FieldInfo | None) -> type[Wire] | None:
    """The JSON object type a field holds (itself, optional, or a list of it)."""
    pending = [None if field is None else field.annotation]
    while pending:
        kind = pending.pop()
        if isinstance(kind, type) and issubclass(kind, Wire):
            return kind
        if get_origin(kind) in (list, Union, types.UnionType):
            pending += get_args(kind)
    return None
