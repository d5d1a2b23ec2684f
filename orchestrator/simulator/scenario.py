"""The scenario file: faults injected per cluster or per SVM, selected by glob.

A scenario is YAML, validated here into frozen pydantic models (unknown keys are errors).
The full format is documented in `docs/simulator.md`; in short:

    seed: 7                      # optional; same seed => same faults
    options: {...}               # fleet-wide behaviour (Options)
    faults:                      # applied in file order; each has a `kind`
      - {kind: keystore_initializing, cluster: "c00*", svm: "fin*", attempts: 2}
      - {kind: http_errors, cluster: "c002", rate: 0.2, statuses: [502, 503]}
"""

from __future__ import annotations

import random
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from orchestrator.simulator.providers import Provider

KeystoreState = Literal[
    "active", "mixed", "svm_kek_rekey", "blocked", "switching", "initializing", "disabling"
]

DEFAULT_JOB_EXPIRY_S = 300.0
DEFAULT_LOCKOUT_AFTER = 5
DEFAULT_MAX_CONCURRENT_REQUESTS = 64
DEFAULT_RETRY_AFTER_S = 1
# Today's guess at a rekey job's description (unconfirmed; `{uuid}` is the configuration's).
# `{collection}` and `{operation}` name the provider's path and the rekey: for an AWS
# external rekey this is `POST /api/security/aws-kms/{uuid}/rekey-external`.
DEFAULT_JOB_DESCRIPTION = "POST /api/security/{collection}/{uuid}/rekey-{operation}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Distribution(_Model):
    """A uniform distribution of seconds, `{min_s, max_s}`."""

    min_s: float = Field(ge=0)
    max_s: float = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> Distribution:
        if self.max_s < self.min_s:
            raise ValueError("max_s must be >= min_s")
        return self

    def draw(self, rng: random.Random) -> float:
        """One value in [min_s, max_s]."""
        if self.max_s == self.min_s:
            return self.min_s
        return rng.uniform(self.min_s, self.max_s)


class OverloadMix(_Model):
    """Relative weights of the answers past the concurrent request limit."""

    too_many: float = Field(1.0, ge=0, alias="429")
    unavailable: float = Field(0.0, ge=0, alias="503")
    drop: float = Field(0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _string_keys(cls, data: object) -> object:
        # YAML reads `429:` as an integer key; the aliases are strings.
        if isinstance(data, dict):
            return {str(key): value for key, value in data.items()}
        return data

    def choose(self, rng: random.Random) -> Literal["429", "503", "drop"]:
        """Pick one answer, weighted (429 when all weights are zero)."""
        total = self.too_many + self.unavailable + self.drop
        if total <= 0:
            return "429"
        x = rng.random() * total
        if x < self.too_many:
            return "429"
        return "503" if x < self.too_many + self.unavailable else "drop"


class Options(_Model):
    """Fleet-wide behaviour. Every field has a documented default.

    The first block are the switches for what ONTAP's documentation leaves unconfirmed
    (docs/simulator.md, "ONTAP as documented"); the defaults are today's guesses.
    """

    job_description: str = DEFAULT_JOB_DESCRIPTION  # template, `{uuid}`; "" = no description
    rekey_finished_body: Literal["job", "job_uuid", "empty"] = "job"
    post_return_timeout_default: Literal[0, 1] = 1
    busy_rekey: Literal["conflict", "queue"] = "conflict"
    retry_after_on_503: bool = False
    rekey_finished_status: Literal[200, 201] = 201
    paused_fraction: float = Field(0.0, ge=0, lt=0.9)  # share of a job's run spent `paused`
    running_job_code: int = 0  # the `code` a queued/running/paused job carries
    record_cost_s: float = Field(0.0, ge=0)  # cluster time per collection record (paging)
    trailing_empty_page: bool = False
    job_expiry_s: float = Field(DEFAULT_JOB_EXPIRY_S, ge=0)
    lockout_after: int = Field(DEFAULT_LOCKOUT_AFTER, ge=0)
    max_concurrent_requests: int = Field(DEFAULT_MAX_CONCURRENT_REQUESTS, ge=1)
    overload: OverloadMix = OverloadMix()
    retry_after_s: int = Field(DEFAULT_RETRY_AFTER_S, ge=0)
    job_duration: Distribution = Distribution(min_s=0.2, max_s=1.0)
    latency: Distribution | None = None
    clock_skew_s: float = 0.0  # the clusters' wall clock minus ours (job times, stats)


class _Selector(_Model):
    cluster: str = "*"
    svm: str = "*"

    def matches(self, cluster: str, svm: str | None = None) -> bool:
        """True when the globs select this cluster (and SVM; `-` is the cluster scope)."""
        if not fnmatchcase(cluster, self.cluster):
            return False
        return svm is None or fnmatchcase(svm, self.svm)


RekeyFaultKind = Literal[
    "keystore_initializing",
    "keystore_switching",
    "keystore_disabling",
    "not_configured",
    "keys_in_admin_svm",
    "unwrap_key_failed",
    "missing_kek",
    "node_failure",
    "rekey_error",
    "job_failure",
]

# kind -> (ONTAP code, default HTTP status, message, key store state shown while active)
REKEY_FAULTS: dict[str, tuple[int | None, int, str, KeystoreState | None]] = {
    "keystore_initializing": (
        65539436,
        400,
        "Rekey cannot be performed on the SVM while the enabled keystore configuration is "
        "being initialized. Wait until the keystore is in the active state, and rerun the "
        "rekey operation.",
        "initializing",
    ),
    "keystore_switching": (
        65537610,
        400,
        "Rekey cannot be performed on the SVM while the enabled keystore configuration is "
        "being switched.",
        "switching",
    ),
    "keystore_disabling": (
        65539437,
        400,
        "Rekey cannot be performed on the SVM while the enabled keystore configuration is "
        "being disabled.",
        "disabling",
    ),
    "not_configured": (65537926, 400, "AWS KMS is not configured for the given SVM.", None),
    "keys_in_admin_svm": (
        65537547,
        400,
        "One or more volume encryption keys for encrypted volumes of this data SVM are stored "
        "in the key manager configured for the admin SVM. Use the REST API POST method to "
        "migrate this data SVM's keys from the admin SVM's key manager before running the "
        "rekey operation.",
        None,
    ),
    "unwrap_key_failed": (
        65537538,
        500,
        "Internal error. Failed to get unwrapped key for a given key ID.",
        None,
    ),
    "missing_kek": (
        65537543,
        500,
        "Internal Error. Missing top-level internal key protection key (KEK) on a node.",
        None,
    ),
    "node_failure": (65537919, 500, "External rekey failed on one or more nodes.", None),
    "rekey_error": (None, 400, "Simulated rekey error.", None),
    "job_failure": (None, 400, "Simulated job failure.", None),
}


class RekeyFault(_Selector):
    """A rekey POST refused (sync) or a job that fails (job) with an ONTAP code.

    Active while every given condition holds: `attempts` (the first N POSTs to the
    configuration), `seconds` (the first T seconds of the simulation), `rate` (probability
    per POST). With none given the fault is permanent ("stuck").
    """

    kind: RekeyFaultKind
    code: int | None = None
    status: int | None = Field(None, ge=400, le=599)
    message: str | None = None
    as_: Literal["sync", "job"] | None = Field(None, alias="as")
    attempts: int | None = Field(None, ge=0)
    seconds: float | None = Field(None, ge=0)
    rate: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _code_known(self) -> RekeyFault:
        if REKEY_FAULTS[self.kind][0] is None and self.code is None:
            raise ValueError(f"kind {self.kind} needs a code")
        return self

    @property
    def ontap_code(self) -> int:
        """The ONTAP error code this fault answers with."""
        code = self.code if self.code is not None else REKEY_FAULTS[self.kind][0]
        assert code is not None  # guaranteed by _code_known
        return code

    def code_for(self, provider: Provider) -> int:
        """The code on this provider's configuration (not_configured and node_failure
        have a code per key manager; a given `code` always wins)."""
        if self.code is None and self.kind == "not_configured":
            return provider.not_configured_code
        if self.code is None and self.kind == "node_failure":
            return provider.external_failed_code
        return self.ontap_code

    @property
    def http_status(self) -> int:
        """The HTTP status of the synchronous answer."""
        return self.status or REKEY_FAULTS[self.kind][1]

    @property
    def text(self) -> str:
        """The ONTAP error message."""
        return self.message or REKEY_FAULTS[self.kind][2]

    @property
    def path(self) -> Literal["sync", "job"]:
        """Whether the code comes back in the POST's answer or as a failed job."""
        if self.as_ is not None:
            return self.as_
        return "job" if self.kind == "job_failure" else "sync"

    @property
    def shows_state(self) -> KeystoreState | None:
        """The key store state visible while this fault is active, if any."""
        return REKEY_FAULTS[self.kind][3]


class RateFault(_Selector):
    """Per-request faults drawn with probability `rate`.

    `drop_before`/`drop_after` apply to rekey POSTs (before or after the job is created);
    `http_errors` to every /api request (`requests: all`) or rekey POSTs only
    (`requests: rekey`);
    `slow` adds `delay_s` to the response.
    """

    kind: Literal["drop_before", "drop_after", "http_errors", "slow"]
    rate: float = Field(ge=0, le=1)
    statuses: tuple[Literal[500, 502, 503, 504], ...] = (502, 503, 504)
    requests: Literal["all", "rekey"] = "all"
    delay_s: float = Field(5.0, ge=0)


class DistributionFault(_Selector):
    """`latency` of every request on a cluster, or `job_duration` of rekey jobs."""

    kind: Literal["latency", "job_duration"]
    min_s: float = Field(ge=0)
    max_s: float = Field(ge=0)

    @property
    def distribution(self) -> Distribution:
        """The distribution as a value object."""
        return Distribution(min_s=self.min_s, max_s=self.max_s)


class ClusterFault(_Selector):
    """Cluster-wide facts: `unreachable`, `cluster_scope` (adds a cluster-scoped
    configuration), `wrong_password` (the cluster's password differs from the fleet's),
    `version` (e.g. 9.11.1), `overload` (a different concurrent request limit or mix),
    `node_down` (the `node` glob's nodes are down: external rekeys fail on them)."""

    kind: Literal[
        "unreachable", "cluster_scope", "wrong_password", "version", "overload", "node_down"
    ]
    node: str = "*"  # node_down: the nodes (glob) that are down
    password: str | None = None
    version: str | None = Field(None, pattern=r"^\d+\.\d+(\.\d+)?$")
    max_concurrent_requests: int | None = Field(None, ge=1)
    mix: OverloadMix | None = None

    @model_validator(mode="after")
    def _version_given(self) -> ClusterFault:
        if self.kind == "version" and self.version is None:
            raise ValueError("kind version needs a version")
        return self


class SvmFault(_Selector):
    """SVM facts: `no_aws_kms` (absent from /aws-kms), `amazon_unreachable`,
    `ekmip_unreachable` (nodes selected by the `node` glob), `keystore_state` (shown by
    /key-stores, e.g. mixed or blocked), `keystore_disabled` (the key store is not enabled
    until a PATCH enables it). Health facts make a rekey fail as ONTAP would; `as` moves
    that failure between the POST's answer (`sync`) and the job (`job`)."""

    kind: Literal[
        "no_aws_kms",
        "amazon_unreachable",
        "ekmip_unreachable",
        "keystore_state",
        "keystore_disabled",
    ]
    node: str = "*"
    state: KeystoreState | None = None
    as_: Literal["sync", "job"] | None = Field(None, alias="as")

    @model_validator(mode="after")
    def _state_given(self) -> SvmFault:
        if self.kind == "keystore_state" and self.state is None:
            raise ValueError("kind keystore_state needs a state")
        return self


Fault = Annotated[
    RekeyFault | RateFault | DistributionFault | ClusterFault | SvmFault,
    Field(discriminator="kind"),
]


class Scenario(_Model):
    """A validated scenario: options plus faults in file order."""

    seed: int | None = None
    options: Options = Options()
    faults: tuple[Fault, ...] = ()

    @classmethod
    def from_yaml(cls, text: str) -> Scenario:
        """Parse a scenario file (safe YAML); an empty document is the empty scenario."""
        return cls.model_validate(yaml.safe_load(text) or {})
