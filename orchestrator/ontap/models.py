"""ONTAP records, parsed once from JSON into frozen values.

Every `from_json` raises `ValueError` on a body that does not have the documented shape;
`orchestrator.ontap.client` turns that into an `OntapError` of kind PROTOCOL. Field
names follow `/work/shared/reference/ontap-rest-notes.md` (sections 1 to 5).

ONTAP reports codes two ways: a job's `code` is an integer, an error body's `error.code`
a string. Both become one decimal string here, and "0" (no error) becomes None, so
`code is None` always means "nothing went wrong".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from orchestrator.core.providers import PROVIDERS, Provider, key_store_type
from orchestrator.core.targets import CLUSTER_SCOPE

MIN_AWS_KMS_REKEY_VERSION = (9, 12)
"""`rekey-external` on `/api/security/aws-kms` was introduced in ONTAP 9.12."""

TERMINAL_JOB_STATES = frozenset({"success", "failure"})
"""`queued`, `running` and `paused` are not terminal."""


class MalformedRecord(ValueError):
    """An ONTAP answer that does not have the documented shape."""


def normalise_code(value: object) -> str | None:
    """An ONTAP code (int, or a decimal string) as a decimal string; 0 or absent -> None."""
    if value is None or value == "":
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


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedRecord(f"missing or invalid string field {key!r}")
    return value


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedRecord(f"missing or invalid integer field {key!r}")
    return value


def _opt_str(data: Mapping[str, Any] | None, key: str) -> str | None:
    value = None if data is None else data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise MalformedRecord(f"field {key!r}: expected a string, got {type(value).__name__}")


def _opt_bool(data: Mapping[str, Any] | None, key: str) -> bool | None:
    value = None if data is None else data.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise MalformedRecord(f"field {key!r}: expected a boolean, got {type(value).__name__}")


def _opt_obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = data.get(key)
    return None if value is None else as_mapping(value, key)


def _opt_time(data: Mapping[str, Any], key: str) -> datetime | None:
    text = _opt_str(data, key)
    if not text:
        return None
    # ONTAP writes ISO-8601 with an offset ("2024-05-01T10:00:00-04:00"); 3.11 parses "Z" too.
    return datetime.fromisoformat(text)


def target_svm(scope: str | None, svm_name: str | None) -> str:
    """The `svm` part of a target key: the SVM name, or "-" for the cluster scope (one rule
    for every provider's configuration record)."""
    if scope == "cluster" or not svm_name:
        return CLUSTER_SCOPE
    return svm_name


@dataclass(frozen=True)
class ClusterInfo:
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
    def from_json(cls, data: object) -> Self:
        record = as_mapping(data, "cluster")
        version = as_mapping(record.get("version"), "cluster.version")
        numbers = (_int(version, "generation"), _int(version, "major"), _int(version, "minor"))
        full = _opt_str(version, "full") or ".".join(map(str, numbers))
        return cls(_str(record, "name"), _str(record, "uuid"), numbers, full)


@dataclass(frozen=True)
class NodeReachability:
    """One node's view of the key server (`ekmip_reachability[]`)."""

    node: str
    reachable: bool
    code: str | None
    message: str

    @classmethod
    def from_json(cls, data: object) -> Self:
        record = as_mapping(data, "ekmip_reachability")
        node = as_mapping(record.get("node"), "ekmip_reachability.node")
        reachable = _opt_bool(record, "reachable")
        if reachable is None:
            raise MalformedRecord("ekmip_reachability: missing 'reachable'")
        message = _opt_str(record, "message") or ""
        return cls(_str(node, "name"), reachable, normalise_code(record.get("code")), message)


@dataclass(frozen=True)
class KmsConfig:
    """One AWS KMS configuration (`/api/security/aws-kms`): one rekey target.

    The health fields are None when they were not asked for (ONTAP returns them only
    when named in `fields=`).
    """

    uuid: str
    scope: str
    svm_name: str | None
    svm_uuid: str | None
    key_id: str
    region: str | None
    cluster_state: bool | None
    state_code: str | None
    state_message: str | None
    amazon_reachable: bool | None
    amazon_message: str | None
    ekmip: tuple[NodeReachability, ...]

    @property
    def target_svm(self) -> str:
        """The `svm` part of the target key: the SVM name, or "-" for the cluster scope."""
        return target_svm(self.scope, self.svm_name)

    @classmethod
    def from_json(cls, data: object) -> Self:
        record = as_mapping(data, "aws_kms")
        svm = _opt_obj(record, "svm")
        state = _opt_obj(record, "state")
        amazon = _opt_obj(record, "amazon_reachability")
        return cls(
            uuid=_str(record, "uuid"),
            scope=_opt_str(record, "scope") or ("svm" if svm else "cluster"),
            svm_name=_opt_str(svm, "name"),
            svm_uuid=_opt_str(svm, "uuid"),
            key_id=_str(record, "key_id"),
            region=_opt_str(record, "region"),
            cluster_state=_opt_bool(state, "cluster_state"),
            state_code=normalise_code(None if state is None else state.get("code")),
            state_message=_opt_str(state, "message"),
            amazon_reachable=_opt_bool(amazon, "reachable"),
            amazon_message=_opt_str(amazon, "message"),
            ekmip=_ekmip(record.get("ekmip_reachability")),
        )


def _ekmip(value: object) -> tuple[NodeReachability, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise MalformedRecord("ekmip_reachability: expected a list")
    return tuple(NodeReachability.from_json(item) for item in value)


# -- issue 15: a key manager configuration of any provider --------------------------------


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
        spec = PROVIDERS[provider]
        record = as_mapping(data, spec.collection.rsplit("/", 1)[-1])
        svm = _opt_obj(record, "svm")
        state = _opt_obj(record, "state")
        reach = _opt_obj(record, spec.reachability_field)
        return cls(
            provider=provider,
            uuid=_str(record, "uuid"),
            scope=_opt_str(record, "scope") or ("svm" if svm else "cluster"),
            svm_name=_opt_str(svm, "name"),
            svm_uuid=_opt_str(svm, "uuid"),
            key_id=_str(record, spec.key_field),
            gcp=_gcp_ring(record) if provider is Provider.GCP else None,
            region=_opt_str(record, "region") if provider is Provider.AWS else None,
            cluster_state=_opt_bool(state, "cluster_state"),
            state_code=normalise_code(None if state is None else state.get("code")),
            state_message=_opt_str(state, "message"),
            kms_reachable=_opt_bool(reach, "reachable"),
            kms_message=_opt_str(reach, "message"),
            ekmip=_ekmip(record.get("ekmip_reachability")),
        )

    @classmethod
    def from_aws(cls, config: KmsConfig) -> Self:
        """Today's AWS record in the provider-neutral form."""
        return cls(
            provider=Provider.AWS,
            uuid=config.uuid,
            scope=config.scope,
            svm_name=config.svm_name,
            svm_uuid=config.svm_uuid,
            key_id=config.key_id,
            gcp=None,
            region=config.region,
            cluster_state=config.cluster_state,
            state_code=config.state_code,
            state_message=config.state_message,
            kms_reachable=config.amazon_reachable,
            kms_message=config.amazon_message,
            ekmip=config.ekmip,
        )


@dataclass(frozen=True)
class ConfigRef:
    """A configuration known by provider and uuid alone (what a ledger row records)."""

    provider: Provider
    uuid: str


def _gcp_ring(record: Mapping[str, Any]) -> GcpKeyRing:
    return GcpKeyRing(
        project_id=_opt_str(record, "project_id"),
        key_ring_location=_opt_str(record, "key_ring_location"),
        key_ring_name=_opt_str(record, "key_ring_name"),
    )


def key_store_for_config(config: KeyManagerConfig, stores: Iterable[KeyStore]) -> KeyStore | None:
    """The key store record of a configuration: same SVM (or the cluster scope), and the
    provider's `type`; None when the cluster lists none."""
    for store in stores:
        same_svm = (store.svm_name or CLUSTER_SCOPE) == config.target_svm
        if same_svm and store.type == config.key_store_type:
            return store
    return None


# -- end of issue 15's block ------------------------------------------------------------


@dataclass(frozen=True)
class KeyStore:
    """One key store (`/api/security/key-stores`); `state` is e.g. `active`, `switching`."""

    uuid: str
    svm_name: str | None
    scope: str | None
    type: str
    enabled: bool | None
    state: str | None

    @classmethod
    def from_json(cls, data: object) -> Self:
        record = as_mapping(data, "key_store")
        svm = _opt_obj(record, "svm")
        return cls(
            uuid=_str(record, "uuid"),
            svm_name=_opt_str(svm, "name"),
            scope=_opt_str(record, "scope"),
            type=_str(record, "type"),
            enabled=_opt_bool(record, "enabled"),
            state=_opt_str(record, "state"),
        )


@dataclass(frozen=True)
class Job:
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
    def from_json(cls, data: object) -> Self:
        record = as_mapping(data, "job")
        error = _opt_obj(record, "error")
        # The integer `code` is the final code; `error.code` repeats it as a string when
        # present. Prefer whichever is non-zero.
        code = normalise_code(record.get("code")) or normalise_code(
            None if error is None else error.get("code")
        )
        message = _opt_str(record, "message") or _opt_str(error, "message") or ""
        return cls(
            uuid=_str(record, "uuid"),
            state=_str(record, "state"),
            code=code,
            message=message,
            description=_opt_str(record, "description"),
            start_time=_opt_time(record, "start_time"),
            end_time=_opt_time(record, "end_time"),
            svm_name=_opt_str(_opt_obj(record, "svm"), "name"),
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
        job_data = _opt_obj(record, "job")
        if job_data is None:
            if status == 202:
                raise MalformedRecord("202 Accepted without a job to follow")
            return cls(status, None, None)
        job_uuid = _str(job_data, "uuid")
        job = Job.from_json(job_data) if "state" in job_data else None
        return cls(status, job, job_uuid)
