"""The raw inventory model: the YAML as the user wrote it, validated field by field.

Pure pydantic (v2): no YAML, no files, no environment. Every model is frozen and refuses
unknown keys. What one field cannot know (duplicate names across clusters, undefined
groups, unset environment variables, unreadable files) is checked by
`orchestrator.config.checks`; `orchestrator.config.resolve` turns a checked model into
the resolved types of `orchestrator.core.inventory`.

Value errors raised here read `what is wrong (how to fix)`: the loader puts the file,
line, column and dotted path in front of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Strict,
    Tag,
    field_validator,
    model_validator,
)

from orchestrator.core.inventory import KEY_ID_CURRENT
from orchestrator.core.keyids import SAMPLE_NAME, fill_template, gcp_field_problem
from orchestrator.core.waves import parse_waves

SUPPORTED_VERSION = 1
KEY_ID_PLACEHOLDERS = ("cluster", "svm")
SVMS_ALL = "all"
REFUSED_KEYS = frozenset({"password", "token"})
"""Keys the model knows only to refuse them (a secret written into the file)."""

UNION_TAGS = frozenset({"svms:all", "svms:list", "[key]"})
"""Elements pydantic inserts into an error's `loc` that are not keys of the YAML."""

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TAG = re.compile(r"^[^\s,]+$")
_CODE = re.compile(r"^[0-9]+$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
"""An environment variable's name (POSIX portable): the schema and the offline checks."""
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
_DNS_NAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*\.?$")
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_KNOWN_FIELDS = frozenset("{" + name + "}" for name in KEY_ID_PLACEHOLDERS)
_LOOPBACK_NAMES = frozenset({"localhost"})
_MAX_PORT = 65535


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- scalar validators -----------------------------------------------------------------


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"invalid name {value!r} (use letters, digits, '_', '.' and '-'; "
            "start with a letter, digit or '_')"
        )
    return value


def _check_tag(value: str) -> str:
    if not _TAG.match(value):
        raise ValueError(f"invalid tag {value!r} (a tag is one word: no spaces, no commas)")
    return value


def _check_env_name(value: str) -> str:
    if not ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name (write the variable's NAME, "
            "e.g. ONTAP_PASSWORD, never its value)"
        )
    return value


def _check_path(value: str) -> str:
    if not value.strip():
        raise ValueError("empty path (give a file path, relative to the inventory's folder)")
    return value


def _refuse_password(value: object) -> object:
    raise ValueError(
        "a literal password is not accepted (use password_env: VARIABLE_NAME, "
        "password_file: PATH or password_command: [program, arg, ...] instead)"
    )


def _refuse_token(value: object) -> object:
    raise ValueError(
        "a literal token is not accepted "
        "(use token_env: VARIABLE_NAME or token_command: [program, arg, ...] instead)"
    )


def _argv_list(value: object) -> object:
    """A `*_command` is an argv list: a shell string would need a shell to split it."""
    # Never quote the value: a command line may hold a secret (`[echo, s3cret]`).
    if isinstance(value, str):
        raise ValueError(  # noqa: TRY004  (pydantic reports ValueError only)
            "expected a list [program, arg, ...], got a string (the command runs without "
            'a shell: write e.g. [vault, kv, get, "-field=password", secret/ontap])'
        )
    if not isinstance(value, list) or not value:
        raise ValueError("expected a non-empty list [program, arg, ...] (the program first)")
    if isinstance(value[0], str) and not value[0].strip():
        raise ValueError("the program (item 0) is empty (name the program to run)")
    return value  # each item's type is checked (and located) by the item type


def check_key_id(value: str) -> str:
    """Accept `current`, a literal key id / ARN / alias, or a `{cluster}`/`{svm}` template.

    AWS key ids, ARNs and aliases never contain braces, so every brace must belong to one
    of the two placeholders (the engine fills them by plain substitution).
    """
    if not value.strip():
        raise ValueError(
            "empty key_id (use current, an AWS key id / ARN / alias, an Azure key URL, "
            "or a template)"
        )
    unknown = [field for field in _PLACEHOLDER.findall(value) if field not in _KNOWN_FIELDS]
    if unknown:
        raise ValueError(
            f"unknown placeholder {', '.join(unknown)} in key_id template "
            "(only {cluster} and {svm})"
        )
    if "{" in _PLACEHOLDER.sub("", value) or "}" in _PLACEHOLDER.sub("", value):
        raise ValueError(
            f"unbalanced brace in key_id template {value!r} (placeholders are {{cluster}} "
            "and {svm}; a key id has no other braces)"
        )
    return value


def _check_uuid(value: str) -> str:
    if not _UUID.match(value):
        raise ValueError(
            f"invalid cluster uuid {value!r} (the cluster's uuid as ONTAP reports it, e.g. "
            "1cd8a442-86d1-11e0-ae1c-123478563412: GET /api/cluster?fields=uuid)"
        )
    return value.lower()


def _check_waves(value: str) -> str:
    # core.waves owns the grammar: `validate` must accept exactly what `run` and `plan` do.
    parse_waves(value)
    return value


# -- host ------------------------------------------------------------------------------


def is_loopback(hostname: str) -> bool:
    """True for `localhost`, 127.0.0.0/8 and ::1."""
    return hostname.lower() in _LOOPBACK_NAMES or is_loopback_address(hostname)


def is_loopback_address(text: str) -> bool:
    """True for an IP address in 127.0.0.0/8 or ::1 (no name: what a listener binds)."""
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def base_url_for(host: str) -> str:
    """The base URL of `host` (`name`, `name:port` or a URL): `https://name[:port]`.

    An `http://` URL is accepted for loopback addresses alone (the simulator without TLS).
    Raises ValueError, worded for the user, on anything else.
    """
    if "://" in host:
        return _base_url_from_url(host)
    hostname, port = _split_host_port(host.strip())
    return _format_url("https", hostname, port)


def _base_url_from_url(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ValueError(f"unsupported scheme {parts.scheme!r} in host (use https://)")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the host URL are not accepted (use auth:)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"host URL {url!r} has a path (give only scheme://name[:port])")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"invalid port in host {url!r} (1-65535)") from None
    hostname = _check_hostname(parts.hostname or "")
    if scheme == "http" and not is_loopback(hostname):
        raise ValueError(
            f"http:// is refused for {hostname} (ONTAP speaks HTTPS only; use https://, "
            "http:// is for the loopback simulator alone)"
        )
    return _format_url(scheme, hostname, port)


def _split_host_port(host: str) -> tuple[str, int | None]:
    if host.startswith("["):  # [v6] or [v6]:port
        inside, _, rest = host[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else None
        if rest and port_text is None:
            raise ValueError(f"invalid host {host!r} (write [ipv6]:port)")
        return _check_hostname(inside), _check_port(port_text, host)
    if host.count(":") > 1:  # a bare IPv6 address
        return _check_hostname(host), None
    name, sep, port_text = host.partition(":")
    return _check_hostname(name), _check_port(port_text if sep else None, host)


def _check_port(text: str | None, host: str) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or not 1 <= int(text) <= _MAX_PORT:
        raise ValueError(f"invalid port in host {host!r} (1-65535)")
    return int(text)


def _check_hostname(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not _DNS_NAME.match(name):
        raise ValueError(f"invalid host name {name!r} (use name, name:port or https://name:port)")
    return name.lower()


def _format_url(scheme: str, hostname: str, port: int | None) -> str:
    shown = f"[{hostname}]" if ":" in hostname else hostname
    return f"{scheme}://{shown}" + (f":{port}" if port is not None else "")


# -- annotated types -------------------------------------------------------------------

Name = Annotated[str, AfterValidator(_check_name)]
TagName = Annotated[str, AfterValidator(_check_tag)]
EnvName = Annotated[str, AfterValidator(_check_env_name)]
FilePath = Annotated[str, AfterValidator(_check_path)]
KeyId = Annotated[str, AfterValidator(check_key_id)]
ClusterUuid = Annotated[str, Strict(), AfterValidator(_check_uuid)]
BaseUrl = Annotated[str, AfterValidator(base_url_for)]
# Strict scalars: YAML already types its values; "4" for an integer is a mistake to
# report, not a value to coerce (lax mode would also read "yes" as a boolean).
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
PositiveInt = Annotated[int, Strict(), Field(ge=1)]
Argv = Annotated[tuple[Annotated[str, Strict()], ...], BeforeValidator(_argv_list)]
CommandTimeout = Annotated[float, Strict(), Field(gt=0, le=600)]


# -- issue 15: key managers (providers), the rotation, and GCP's key fields ---------------
# Kept in one block: `KeyManagerFields` is mixed into the levels (SettingsModel, SvmModel);
# `rekey` is a run option of `defaults:` alone. Shapes are checked by
# `orchestrator.core.keyids`; a literal whose provider is only known from `providers:`
# is checked across levels by `orchestrator.config.key_checks`.

ProviderName = Literal["aws", "azure", "gcp", "barbican"]
RekeyName = Literal["external", "internal"]
GCP_KEY_FIELDS = ("key_name", "project_id", "key_ring_location", "key_ring_name")


def _check_providers(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError(
            "empty providers list (name one or more of aws, azure, gcp, barbican, "
            "or remove the key)"
        )
    repeated = sorted({name for name in value if value.count(name) > 1})
    if repeated:
        raise ValueError(f"provider {repeated[0]} is listed twice (list each provider once)")
    return value


def _gcp_field_checker(field: str) -> Callable[[str], str]:
    """A validator for one GCP key field: a template (`check_key_id`) of GCP's shape."""

    def check(value: str) -> str:
        check_key_id(value)
        if field == "key_name" and value == KEY_ID_CURRENT:
            return value
        sample = fill_template(value, cluster=SAMPLE_NAME, svm=SAMPLE_NAME)
        problem = gcp_field_problem(field, sample)
        if problem is not None:
            raise ValueError(problem)
        return value

    return check


Providers = Annotated[tuple[ProviderName, ...], AfterValidator(_check_providers)]
GcpKeyName = Annotated[str, AfterValidator(_gcp_field_checker("key_name"))]
GcpProjectId = Annotated[str, AfterValidator(_gcp_field_checker("project_id"))]
GcpKeyRingLocation = Annotated[str, AfterValidator(_gcp_field_checker("key_ring_location"))]
GcpKeyRingName = Annotated[str, AfterValidator(_gcp_field_checker("key_ring_name"))]


class KeyManagerFields(_Frozen):
    """Which key managers a level's targets may use, and GCP's key (any level, SVM too)."""

    providers: Providers | None = None
    key_name: GcpKeyName | None = None
    project_id: GcpProjectId | None = None
    key_ring_location: GcpKeyRingLocation | None = None
    key_ring_name: GcpKeyRingName | None = None


# -- end of issue 15's block ------------------------------------------------------------


# -- models ----------------------------------------------------------------------------


class AuthModel(_Frozen):
    """One authentication method; a block is taken whole from one level, never merged."""

    username: Annotated[str, Field(min_length=1)] | None = None
    password_env: EnvName | None = None
    password_file: FilePath | None = None
    client_cert: FilePath | None = None
    client_key: FilePath | None = None
    token_env: EnvName | None = None
    password_command: Argv | None = None
    token_command: Argv | None = None
    command_timeout: CommandTimeout | None = None  # seconds, for a *_command [30]
    # Present only to be refused with a helpful message, never stored.
    password: Annotated[Any, BeforeValidator(_refuse_password)] = Field(None, exclude=True)
    token: Annotated[Any, BeforeValidator(_refuse_token)] = Field(None, exclude=True)

    @property
    def method(self) -> Literal["basic", "cert", "token"]:
        """Which method this block describes (the validator guarantees exactly one)."""
        if self.token_env is not None or self.token_command is not None:
            return "token"
        return "cert" if self.client_cert is not None else "basic"

    @model_validator(mode="after")
    def _exactly_one_method(self) -> AuthModel:
        used = self._methods_used()
        if len(used) != 1:
            raise ValueError(
                ("auth mixes " + " and ".join(used) if used else "auth names no method")
                + " (use one of: username + password_env | password_file | "
                "password_command; client_cert + client_key; token_env | token_command)"
            )
        self._check_complete(used[0])
        if self.command_timeout is not None and not self._commands():
            raise ValueError(
                "command_timeout is set but no password_command or token_command "
                "(remove command_timeout)"
            )
        return self

    def _commands(self) -> bool:
        return self.password_command is not None or self.token_command is not None

    def _methods_used(self) -> list[str]:
        basic = (self.username, self.password_env, self.password_file, self.password_command)
        used = [
            ("username/password", any(v is not None for v in basic)),
            ("client_cert/client_key", self.client_cert is not None or self.client_key is not None),
            ("token", self.token_env is not None or self.token_command is not None),
        ]
        return [label for label, present in used if present]

    def _check_complete(self, method: str) -> None:
        if method == "username/password":
            if self.username is None:
                raise ValueError("basic auth without username (add username: NAME)")
            sources = (self.password_env, self.password_file, self.password_command)
            if sum(source is not None for source in sources) != 1:
                raise ValueError(
                    "basic auth needs exactly one of password_env, password_file and "
                    "password_command (keep one of them)"
                )
        elif method == "token" and self.token_env is not None and self.token_command is not None:
            raise ValueError(
                "token auth needs exactly one of token_env and token_command (keep one of them)"
            )
        elif method == "client_cert/client_key" and (
            self.client_cert is None or self.client_key is None
        ):
            raise ValueError("certificate auth needs both client_cert and client_key (add both)")


class TlsModel(_Frozen):
    verify: Bool = True
    ca_bundle: FilePath | None = None

    @model_validator(mode="after")
    def _bundle_needs_verify(self) -> TlsModel:
        if not self.verify and self.ca_bundle is not None:
            raise ValueError("ca_bundle is set but verify is false (remove one of them)")
        return self


class SettingsModel(KeyManagerFields):
    """What a cluster may inherit from its groups and from `defaults`."""

    auth: AuthModel | None = None
    tls: TlsModel | None = None
    key_id: KeyId | None = None
    per_cluster: PositiveInt | None = None
    priority: Int | None = None
    include_cluster_scope: Bool | None = None


class SvmModel(KeyManagerFields):
    """An SVM entry: a plain name, or `{name, key_id, priority}` (and issue 15's fields)."""

    name: Name
    key_id: KeyId | None = None
    priority: Int | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: object) -> object:
        if isinstance(data, str):
            return {"name": data}
        if not isinstance(data, dict):
            # ValueError, not TypeError: pydantic turns only ValueError into a user error.
            raise ValueError(  # noqa: TRY004
                "expected an SVM name or a mapping {name, key_id, priority} (fix this entry)"
            )
        return data


def _svms_kind(value: object) -> str:
    return "svms:all" if isinstance(value, str) else "svms:list"


SvmsSpec = Annotated[
    Annotated[Literal["all"], Tag("svms:all")] | Annotated[tuple[SvmModel, ...], Tag("svms:list")],
    Discriminator(_svms_kind),
]


class GroupModel(SettingsModel):
    tags: tuple[TagName, ...] = ()


class ClusterModel(SettingsModel):
    name: Name
    host: BaseUrl
    uuid: ClusterUuid | None = None
    groups: tuple[Name, ...] = ()
    tags: tuple[TagName, ...] = ()
    svms: SvmsSpec

    @field_validator("svms", mode="before")
    @classmethod
    def _all_or_list(cls, value: object) -> object:
        if isinstance(value, str) and value != SVMS_ALL:
            raise ValueError(
                f"expected all or a list of SVM names, got {value!r} (write svms: all)"
            )
        if not isinstance(value, (str, list)):
            raise ValueError(  # noqa: TRY004  (pydantic reports ValueError only)
                "expected all or a list of SVM names (write svms: all or a list)"
            )
        return value


class DefaultsModel(SettingsModel):
    """Inherited settings plus the run options the command line may override."""

    concurrency: PositiveInt | None = None
    waves: Annotated[str, AfterValidator(_check_waves)] | None = None
    max_fail_percent: Annotated[float, Strict(), Field(ge=0, le=100)] | None = None
    return_timeout: Annotated[int, Strict(), Field(ge=0, le=120)] | None = None
    rekey: RekeyName | None = None  # issue 15: external | internal; --rekey wins


RetryClass = Literal["retryable", "retryable_bounded", "fatal", "skip"]


class RetryModel(_Frozen):
    """An override of the built-in handling of one ONTAP error code."""

    model_config = ConfigDict(populate_by_name=False)

    error_class: RetryClass | None = Field(None, alias="class")
    max_attempts: PositiveInt | None = None
    base_delay_s: Annotated[float, Strict(), Field(gt=0)] | None = None
    max_delay_s: Annotated[float, Strict(), Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _delays_ordered(self) -> RetryModel:
        base, cap = self.base_delay_s, self.max_delay_s
        if base is not None and cap is not None and base > cap:
            raise ValueError(
                f"base_delay_s {base:g} exceeds max_delay_s {cap:g} (swap or fix them)"
            )
        return self


def _check_version(value: int) -> int:
    if value != SUPPORTED_VERSION:
        raise ValueError(
            f"unsupported version {value} (this ontap-rekey reads version: {SUPPORTED_VERSION})"
        )
    return value


def _check_code(value: str) -> str:
    if not _CODE.match(value):
        raise ValueError(f"invalid ONTAP error code {value!r} (digits only, e.g. 65539436)")
    return value


ErrorCode = Annotated[str, AfterValidator(_check_code)]


class InventoryModel(_Frozen):
    """The whole file (`version: 1`)."""

    version: Annotated[int, Strict(), AfterValidator(_check_version)]
    defaults: DefaultsModel = DefaultsModel()
    groups: dict[Name, GroupModel] = Field(default_factory=dict)
    clusters: tuple[ClusterModel, ...]
    retry: dict[ErrorCode, RetryModel] = Field(default_factory=dict)

    @field_validator("clusters")
    @classmethod
    def _some_clusters(cls, value: tuple[ClusterModel, ...]) -> tuple[ClusterModel, ...]:
        # Not Field(min_length=1): that also fires, wrongly, when every entry is invalid.
        if not value:
            raise ValueError("the list is empty (add at least one cluster)")
        return value

    @field_validator("retry", mode="before")
    @classmethod
    def _codes_as_strings(cls, value: object) -> object:
        # An unquoted code is an int in YAML; the engine compares decimal strings.
        if not isinstance(value, dict):
            return value
        return {_code_key(key): item for key, item in value.items()}


def _code_key(key: object) -> object:
    return str(key) if isinstance(key, int) and not isinstance(key, bool) else key
