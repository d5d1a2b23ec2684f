"""ONTAP records, parsed once from JSON into frozen values.

Each record's JSON shape is a strict pydantic model (`orchestrator.ontap.wire`: a string
is a string, a boolean a boolean, an object an object; fields ONTAP adds are ignored),
and `from_json` turns the validated wire form into the record the engine uses. Every
`from_json` raises `ValueError` (`MalformedRecord`) on a body that does not have the
documented shape, with one line naming the field, as before pydantic (`wire.parse`
translates pydantic's errors); `orchestrator.ontap.client` turns that into an
`OntapError` of kind PROTOCOL. Field names follow
`/work/shared/reference/ontap-rest-notes.md` (sections 1 to 5).

ONTAP reports codes two ways: a job's `code` is an integer, an error body's `error.code`
a string. Both become one decimal string here, and "0" (no error) becomes None, so
`code is None` always means "nothing went wrong".

Each `from_json` first reads the usual record directly (`_read`: plain type checks
that accept a subset of what the wire model accepts, and build the same record); on
anything unusual it falls back to the pydantic model, which returns the same record or
the error. The wire models are defined on first use (`wire` is imported by the first
unusual record, and built then, `defer_build`): a run whose answers are all well formed
never defines them. Both paths are held equal by tests/test_ontap_models_fast.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Self, TypeVar

from orchestrator.core.providers import PROVIDERS, Provider, key_store_type
from orchestrator.core.targets import CLUSTER_SCOPE

if TYPE_CHECKING:
    from orchestrator.ontap.wire import NodeReachabilityWire

MIN_AWS_KMS_REKEY_VERSION = (9, 12)
"""`rekey-external` on `/api/security/aws-kms` was introduced in ONTAP 9.12."""

TERMINAL_JOB_STATES = frozenset({"success", "failure"})
"""`queued`, `running` and `paused` are not terminal."""

GCP_RING_FIELDS = ("project_id", "key_ring_location", "key_ring_name")
"""Where a GCP configuration names its key's project and key ring."""


class MalformedRecord(ValueError):
    """An ONTAP answer that does not have the documented shape."""


def normalise_code(value: object) -> str | None:
    """An ONTAP code (int, or a decimal string) as a decimal string; 0 or absent -> None."""
    if value is None or value in ("", "0"):  # "no error" (the usual answer) first
        return None
    if isinstance(value, bool):  # bool is an int subclass: never a code
        raise MalformedRecord(f"not an ONTAP code: {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    else:
        raise MalformedRecord(f"not an ONTAP code: {value!r}")
    return None if number == 0 else str(number)


def as_mapping(data: object, what: str) -> Mapping[str, Any]:
    """`data` as a JSON object, or ValueError naming `what`."""
    if not isinstance(data, Mapping):
        raise MalformedRecord(f"{what}: expected a JSON object, got {type(data).__name__}")
    return data


def target_svm(scope: str | None, svm_name: str | None) -> str:
    """The `svm` part of a target key: the SVM name, or "-" for the cluster scope (one rule
    for every provider's configuration record)."""
    if scope == "cluster" or not svm_name:
        return CLUSTER_SCOPE
    return svm_name


def _opt_str(data: Mapping[str, Any] | None, key: str) -> str | None:
    value = None if data is None else data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedRecord(f"field {key!r}: expected a string, got {type(value).__name__}")


# -- the fast path: the usual record read directly ---------------------------------------
#
# Hot: discovery and every read-back batch parse 40 configurations and 40 key stores per
# cluster, every POST its answer. pydantic's validation plus the wire object cost ~4x a
# direct read (a page of 40 configurations: 1,246 vs 292 us, benchmarks/parse_cost.py).
# Each reader accepts only values of exactly the JSON type the wire model
# wants (a subset of what it accepts) and raises `_Unusual` at the first other value; the
# caller then parses with the wire model, which gives the same record or the error.


class _Unusual(Exception):
    """The record is not the usual shape: let the wire model judge it."""


class _ReadFast:
    """`from_json` for a record read directly when usual (`_read`), by its wire model
    otherwise (`_validated`): the same record, or the same error."""

    @classmethod
    def from_json(cls, data: object) -> Self:
        try:
            return cls._read(data)
        except _Unusual:
            return cls._validated(data)

    @classmethod
    def _read(cls, data: object) -> Self:
        raise NotImplementedError

    @classmethod
    def _validated(cls, data: object) -> Self:
        raise NotImplementedError


def _obj(value: object) -> dict[str, Any] | None:
    """An optional JSON object."""
    if value is None or type(value) is dict:
        return value
    raise _Unusual


def _text(value: object) -> str:
    """A required, non-empty string (`Text`)."""
    if type(value) is str and value:
        return value
    raise _Unusual


def _str(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    raise _Unusual


def _bool(value: object) -> bool | None:
    if value is None or type(value) is bool:
        return value
    raise _Unusual


def _int(value: object) -> int:
    if type(value) is int:  # not a bool: strict
        return value
    raise _Unusual


def _code(value: object) -> str | None:
    """`Code`: its validator itself (what it refuses, the wire model reports)."""
    try:
        return normalise_code(value)
    except MalformedRecord:
        raise _Unusual from None


def _time(value: object) -> datetime | None:
    """`Time`: an ISO-8601 string, "" or absent (None)."""
    if value is None or value == "":
        return None
    if type(value) is not str:
        raise _Unusual
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _Unusual from None


R = TypeVar("R")


def _frozen(cls: type[R], **fields: Any) -> R:
    """`cls(**fields)` for the frozen records below, without their `__init__` (which sets
    each field through `object.__setattr__`): ~0.6 instead of ~4 us for a configuration's
    14 fields, per record of every discovery and read-back page. Valid for a dataclass
    without `__post_init__` or `__slots__`, given every field (tests/test_ontap_models_fast.py
    holds each such record equal, field for field, to the one its constructor builds)."""
    record = object.__new__(cls)
    record.__dict__.update(fields)
    return record


@dataclass(frozen=True)
class _ConfigShape:
    """Where one provider's configuration record keeps what the engine reads."""

    key_field: str
    reachability_field: str


_CONFIG_SHAPES = {
    provider: _ConfigShape(spec.key_field, spec.reachability_field)
    for provider, spec in PROVIDERS.items()
}


# -- the records -------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterInfo(_ReadFast):
    """`GET /api/cluster?fields=name,uuid,version` (the lowest version across nodes)."""

    name: str
    uuid: str
    version: tuple[int, int, int]
    version_full: str

    @property
    def supports_aws_kms_rekey(self) -> bool:
        """True when ONTAP is 9.12 or later."""
        return self.version[:2] >= MIN_AWS_KMS_REKEY_VERSION

    @classmethod
    def _read(cls, data: object) -> Self:
        if type(data) is not dict:
            raise _Unusual
        version = data.get("version")
        if type(version) is not dict:
            raise _Unusual
        numbers = (
            _int(version.get("generation")),
            _int(version.get("major")),
            _int(version.get("minor")),
        )
        full = _str(version.get("full"))
        name, uuid = _text(data.get("name")), _text(data.get("uuid"))
        return cls(name, uuid, numbers, full or ".".join(map(str, numbers)))

    @classmethod
    def _validated(cls, data: object) -> Self:
        from orchestrator.ontap import wire as shapes  # on first use: see its docstring

        wire = shapes.parse(shapes.ClusterWire, data, "cluster", {("version",): "cluster.version"})
        version = wire.version
        numbers = (version.generation, version.major, version.minor)
        return cls(wire.name, wire.uuid, numbers, version.full or ".".join(map(str, numbers)))


@dataclass(frozen=True)
class NodeReachability:
    """One node's view of the key server (`ekmip_reachability[]`)."""

    node: str
    reachable: bool
    code: str | None
    message: str

    @classmethod
    def from_wire(cls, wire: NodeReachabilityWire) -> Self:
        return cls(wire.node.name, wire.reachable, wire.code, wire.message or "")

    @classmethod
    def _read(cls, data: object) -> Self:
        """One `ekmip_reachability[]` item of the usual shape, else `_Unusual`."""
        if type(data) is not dict:
            raise _Unusual
        node, reachable = data.get("node"), data.get("reachable")
        if type(node) is not dict or type(reachable) is not bool:
            raise _Unusual
        name, code, message = (
            _text(node.get("name")),
            _code(data.get("code")),
            _str(data.get("message")),
        )
        return _frozen(cls, node=name, reachable=reachable, code=code, message=message or "")


@dataclass(frozen=True)
class GcpKeyRing:
    """Where a GCP key lives (`project_id`, `key_ring_location`, `key_ring_name`)."""

    project_id: str | None
    key_ring_location: str | None
    key_ring_name: str | None


@dataclass(frozen=True)
class KeyManagerConfig:
    """One cloud key manager configuration (`/api/security/aws-kms`, `azure-key-vaults`,
    `gcp-kms`, `barbican-kms`): one rekey target, with its provider.

    `key_id` is the record's key identifier: `key_id` for AWS, Azure and Barbican, and
    `key_name` for GCP (with `gcp` for its project and key ring). The health fields are
    None when they were not asked for (ONTAP returns them only when named): `kms_*` is the
    provider's cluster-wide reachability (`amazon_reachability`, `azure_reachability`,
    `google_reachability`, `barbican_reachability`), `ekmip` the per-node view.
    """

    provider: Provider
    uuid: str
    scope: str
    svm_name: str | None
    svm_uuid: str | None
    key_id: str
    gcp: GcpKeyRing | None
    region: str | None  # AWS only
    cluster_state: bool | None
    state_code: str | None
    state_message: str | None
    kms_reachable: bool | None
    kms_message: str | None
    ekmip: tuple[NodeReachability, ...]

    @property
    def target_svm(self) -> str:
        """The `svm` part of the target key: the SVM name, or "-" for the cluster scope."""
        return target_svm(self.scope, self.svm_name)

    @property
    def key_store_type(self) -> str:
        """The `type` of this configuration's record in `/api/security/key-stores`."""
        return key_store_type(self.provider)

    @property
    def unreachable_nodes(self) -> tuple[str, ...]:
        """The nodes that report the key manager unreachable (`ekmip_reachability`)."""
        return tuple(node.node for node in self.ekmip if not node.reachable)

    @classmethod
    def from_json(cls, provider: Provider, data: object) -> Self:
        """Parse one record of the provider's collection."""
        try:
            return cls._read(provider, data)
        except _Unusual:
            return cls._validated(provider, data)

    @classmethod
    def _read(cls, provider: Provider, data: object) -> Self:
        if type(data) is not dict:
            raise _Unusual
        shape = _CONFIG_SHAPES[provider]
        svm = _obj(data.get("svm"))
        state = _obj(data.get("state"))
        reach = _obj(data.get(shape.reachability_field))
        nodes = data.get("ekmip_reachability")
        if nodes is not None and type(nodes) is not list:
            raise _Unusual
        ekmip = tuple(NodeReachability._read(node) for node in nodes or ())
        uuid, scope = _text(data.get("uuid")), _str(data.get("scope"))
        key_id = _text(data.get(shape.key_field))
        gcp = None
        if provider is Provider.GCP:
            gcp = GcpKeyRing(*(_str(data.get(name)) for name in GCP_RING_FIELDS))
        return _frozen(
            cls,
            provider=provider,
            uuid=uuid,
            scope=scope or ("svm" if data.get("svm") else "cluster"),
            svm_name=None if svm is None else _str(svm.get("name")),
            svm_uuid=None if svm is None else _str(svm.get("uuid")),
            key_id=key_id,
            gcp=gcp,
            region=_str(data.get("region")) if provider is Provider.AWS else None,
            cluster_state=None if state is None else _bool(state.get("cluster_state")),
            state_code=None if state is None else _code(state.get("code")),
            state_message=None if state is None else _str(state.get("message")),
            kms_reachable=None if reach is None else _bool(reach.get("reachable")),
            kms_message=None if reach is None else _str(reach.get("message")),
            ekmip=ekmip,
        )

    @classmethod
    def _validated(cls, provider: Provider, data: object) -> Self:
        spec = PROVIDERS[provider]
        what = spec.collection.rsplit("/", 1)[-1]
        record = as_mapping(data, what)
        from orchestrator.ontap import wire as shapes  # on first use: see its docstring

        wire: Any = shapes.parse(shapes.CONFIG_WIRES[provider], record, what)
        svm, state = wire.svm, wire.state
        reach = getattr(wire, spec.reachability_field)
        return cls(
            provider=provider,
            uuid=wire.uuid,
            scope=wire.scope or ("svm" if record.get("svm") else "cluster"),
            svm_name=None if svm is None else svm.name,
            svm_uuid=None if svm is None else svm.uuid,
            key_id=getattr(wire, spec.key_field),
            gcp=GcpKeyRing(*(getattr(wire, f) for f in GCP_RING_FIELDS))
            if provider is Provider.GCP
            else None,
            region=wire.region if provider is Provider.AWS else None,
            cluster_state=None if state is None else state.cluster_state,
            state_code=None if state is None else state.code,
            state_message=None if state is None else state.message,
            kms_reachable=None if reach is None else reach.reachable,
            kms_message=None if reach is None else reach.message,
            ekmip=tuple(NodeReachability.from_wire(n) for n in wire.ekmip_reachability or ()),
        )


@dataclass(frozen=True)
class ConfigRef:
    """A configuration known by provider and uuid alone (what a ledger row records)."""

    provider: Provider
    uuid: str


def key_store_for_config(config: KeyManagerConfig, stores: Iterable[KeyStore]) -> KeyStore | None:
    """The key store record of a configuration: same SVM (or the cluster scope), and the
    provider's `type`; None when the cluster lists none."""
    for store in stores:
        same_svm = (store.svm_name or CLUSTER_SCOPE) == config.target_svm
        if same_svm and store.type == config.key_store_type:
            return store
    return None


def key_stores_by_target(stores: Iterable[KeyStore]) -> dict[tuple[str, str], KeyStore]:
    """`key_store_for_config` for many configurations at once: (the target's SVM part, the
    key store `type`) -> the first such store. Looking each configuration up in this
    instead of walking the list made a cluster's readiness linear in its SVMs."""
    index: dict[tuple[str, str], KeyStore] = {}
    for store in stores:
        index.setdefault((store.svm_name or CLUSTER_SCOPE, store.type), store)
    return index


@dataclass(frozen=True)
class KeyStore(_ReadFast):
    """One key store (`/api/security/key-stores`); `state` is e.g. `active`, `switching`."""

    uuid: str
    svm_name: str | None
    scope: str | None
    type: str
    enabled: bool | None
    state: str | None

    @classmethod
    def _read(cls, data: object) -> Self:
        if type(data) is not dict:
            raise _Unusual
        svm = _obj(data.get("svm"))
        return _frozen(
            cls,
            uuid=_text(data.get("uuid")),
            svm_name=None if svm is None else _str(svm.get("name")),
            scope=_str(data.get("scope")),
            type=_text(data.get("type")),
            enabled=_bool(data.get("enabled")),
            state=_str(data.get("state")),
        )

    @classmethod
    def _validated(cls, data: object) -> Self:
        from orchestrator.ontap import wire as shapes  # on first use: see its docstring

        wire = shapes.parse(shapes.KeyStoreWire, data, "key_store")
        svm = None if wire.svm is None else wire.svm.name
        return cls(wire.uuid, svm, wire.scope, wire.type, wire.enabled, wire.state)


@dataclass(frozen=True)
class Job(_ReadFast):
    """A cluster job (`/api/cluster/jobs/{uuid}`); `code` is None unless the job failed."""

    uuid: str
    state: str
    code: str | None
    message: str
    description: str | None
    start_time: datetime | None
    end_time: datetime | None
    svm_name: str | None

    @property
    def is_terminal(self) -> bool:
        """True once the job ended (`success` or `failure`)."""
        return self.state in TERMINAL_JOB_STATES

    @property
    def succeeded(self) -> bool:
        """True when the job ended in `success`."""
        return self.state == "success"

    @classmethod
    def _read(cls, data: object) -> Self:
        if type(data) is not dict:
            raise _Unusual
        error = _obj(data.get("error"))
        if error is not None and not all(type(key) is str for key in error):
            raise _Unusual  # `dict[str, Any]`
        svm = _obj(data.get("svm"))
        wire_code, message = _code(data.get("code")), _str(data.get("message"))
        uuid, state = _text(data.get("uuid")), _text(data.get("state"))
        description = _str(data.get("description"))
        start_time, end_time = _time(data.get("start_time")), _time(data.get("end_time"))
        svm_name = None if svm is None else _str(svm.get("name"))
        # from here on exactly as `_validated`: the same record, or the same error
        code = wire_code or normalise_code(None if error is None else error.get("code"))
        return _frozen(
            cls,
            uuid=uuid,
            state=state,
            code=code,
            message=message or _opt_str(error, "message") or "",
            description=description,
            start_time=start_time,
            end_time=end_time,
            svm_name=svm_name,
        )

    @classmethod
    def _validated(cls, data: object) -> Self:
        from orchestrator.ontap import wire as shapes  # on first use: see its docstring

        wire = shapes.parse(shapes.JobWire, data, "job")
        error = wire.error
        # The integer `code` is the final code; `error.code` repeats it as a string when
        # present. Prefer whichever is non-zero (`error` is read only when needed).
        code = wire.code or normalise_code(None if error is None else error.get("code"))
        return cls(
            uuid=wire.uuid,
            state=wire.state,
            code=code,
            message=wire.message or _opt_str(error, "message") or "",
            description=wire.description,
            start_time=wire.start_time,
            end_time=wire.end_time,
            svm_name=None if wire.svm is None else wire.svm.name,
        )


@dataclass(frozen=True)
class RekeySubmission:
    """ONTAP's answer to a rekey POST.

    `job_uuid` is set whenever the answer names a job (record it at once); `job` only
    when the body carried the job's state too (a 202 carries just the uuid and link).
    """

    status: int
    job: Job | None
    job_uuid: str | None

    @property
    def finished(self) -> bool:
        """True when nothing is left to poll: 200/201 and the job, if any, has ended."""
        if self.status not in (200, 201):
            return False
        if self.job_uuid is None:
            return True
        return self.job is not None and self.job.is_terminal

    @classmethod
    def from_json(cls, status: int, data: object) -> Self:
        """Parse a 200/201/202 body (None for an empty body)."""
        record = as_mapping({} if data is None else data, "rekey response")
        job_data = record.get("job")
        if isinstance(job_data, Mapping) and "state" in job_data:  # the job, not its link
            job = Job.from_json(job_data)
            return cls(status, job, job.uuid)
        try:
            job_uuid = _job_link(record)
        except _Unusual:
            from orchestrator.ontap import wire as shapes  # on first use: see its docstring

            answer = shapes.parse(shapes.AnswerWire, record, "rekey response")
            job_uuid = None if answer.job is None else answer.job.uuid
        if job_uuid is None:
            if status == 202:
                raise MalformedRecord("202 Accepted without a job to follow")
            return cls(status, None, None)
        return cls(status, None, job_uuid)


def _job_link(record: Mapping[str, Any]) -> str | None:
    """`wire.AnswerWire`'s job uuid (None: no job) of the usual answer, else `_Unusual`."""
    if type(record) is not dict:
        raise _Unusual
    job = _obj(record.get("job"))
    return None if job is None else _text(job.get("uuid"))
