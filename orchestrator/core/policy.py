"""The error policy: what the engine does with each `OntapError` (spec: "Error policy").

The policy is data. `ERROR_TABLE` holds one row per ONTAP code (every code documented for
`rekey-external`, and the generic codes ONTAP uses everywhere), `STATUS_TABLE` the HTTP
statuses that arrive without a known code, `KIND_TABLE` the transport outcomes. The same
rows feed `classify()`, the hints in logs and reports, and `docs/errors.md`
(`errors_markdown()`; a test keeps the file equal to it).

`classify()` decides in this order, first match wins:

1. TLS failure: fatal (verification stays on; the hint names `tls: {ca_bundle: ...}`).
2. HTTP 401: AUTH, never retried, never overridable (repeated logins lock accounts).
3. Never connected (CONNECT): retryable.
4. A POST whose fate is unknown (SENT, or an unreadable answer, with `maybe_sent`):
   UNCERTAIN (settle from jobs and key store state before anything else).
5. A code in `ERROR_TABLE`: its row (whether it came in an error body or a failed job).
6. 429/502/503/504, or a dropped GET: retryable (honour `Retry-After`).
7. Any other code: fatal (unknown codes are fatal).
8. The status row, then the kind row; fatal when nothing matched.

Inventory `retry:` overrides (per code) then replace fields of the result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from string import Template
from types import MappingProxyType
from typing import TypeVar

from orchestrator.core.errors import ErrorClass, ErrorKind, OntapError
from orchestrator.core.inventory import RetryOverride
from orchestrator.core.providers import PROVIDERS, REKEY_SINCE, Operation, Provider

DEFAULT_BASE_DELAY_S = 1.0
DEFAULT_MAX_DELAY_S = 30.0
DEFAULT_BOUNDED_ATTEMPTS = 3
KEYSTORE_WAIT_BASE_DELAY_S = 15.0  # key store initialisation takes minutes, not seconds
KEYSTORE_WAIT_MAX_DELAY_S = 120.0
UNCERTAIN_BASE_DELAY_S = 1.0  # the pace of settling (job and key store reads)
UNCERTAIN_MAX_DELAY_S = 10.0

E = TypeVar("E", "CodeEntry", "ConditionEntry")

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
NO_OVERRIDES: Mapping[str, RetryOverride] = MappingProxyType({})


@dataclass(frozen=True)
class RetryRule:
    """What to do with one error.

    `max_attempts` counts every attempt of the target, the first included; None means
    "no limit of its own" (the engine's per-target attempts, budgets and deadline still
    apply). Classes that never retry (FATAL, SKIP, AUTH) have 1.
    """

    error_class: ErrorClass
    max_attempts: int | None
    base_delay_s: float
    max_delay_s: float
    hint: str


def _class_defaults(error_class: ErrorClass, hint: str = "") -> RetryRule:
    """The built-in limits of a class (also used when an override changes the class)."""
    match error_class:
        case ErrorClass.RETRYABLE:
            return RetryRule(error_class, None, DEFAULT_BASE_DELAY_S, DEFAULT_MAX_DELAY_S, hint)
        case ErrorClass.BOUNDED:
            attempts = DEFAULT_BOUNDED_ATTEMPTS
            return RetryRule(error_class, attempts, 5.0, 60.0, hint)
        case ErrorClass.UNCERTAIN:
            base, cap = UNCERTAIN_BASE_DELAY_S, UNCERTAIN_MAX_DELAY_S
            return RetryRule(error_class, None, base, cap, hint)
        case _:
            return RetryRule(error_class, 1, 0.0, 0.0, hint)


@dataclass(frozen=True)
class CodeEntry:
    """One documented ONTAP code: its meaning, class, the tool's action and the remedy."""

    code: str
    meaning: str
    error_class: ErrorClass
    action: str  # what the tool does
    remedy: str  # what the operator should do: the hint in logs and reports
    max_attempts: int | None = None  # None: the class default
    base_delay_s: float | None = None
    max_delay_s: float | None = None

    def rule(self) -> RetryRule:
        """The entry as a RetryRule (class defaults where the entry says nothing)."""
        rule = _class_defaults(self.error_class, self.remedy)
        return replace(
            rule,
            max_attempts=rule.max_attempts if self.max_attempts is None else self.max_attempts,
            base_delay_s=rule.base_delay_s if self.base_delay_s is None else self.base_delay_s,
            max_delay_s=rule.max_delay_s if self.max_delay_s is None else self.max_delay_s,
        )


@dataclass(frozen=True)
class ConditionEntry:
    """A condition without a known code: an HTTP status or a transport outcome."""

    condition: str
    meaning: str
    error_class: ErrorClass
    action: str
    remedy: str

    def rule(self) -> RetryRule:
        return _class_defaults(self.error_class, self.remedy)


_RETRY = "retries with exponential backoff and full jitter, honouring `Retry-After` (capped)"
_FAIL = "marks the target `failed` with this hint; no retry"
_RERUN = "then re-run the target (`--targets @failed.txt`)."

ERROR_TABLE: tuple[CodeEntry, ...] = (
    # -- the codes documented for POST /api/security/aws-kms/{uuid}/rekey-external --------
    CodeEntry(
        "65537538",
        "Internal error. Failed to get the unwrapped key for the given key ID.",
        ErrorClass.FATAL,
        _FAIL,
        "Check that the $kms key exists and is enabled, and that the cluster's $cloud "
        "credentials may use it (`security key-manager external $cli show`, EMS); " + _RERUN,
    ),
    CodeEntry(
        "65537543",
        "Internal error. Missing top-level internal key protection key (KEK) on a node.",
        ErrorClass.FATAL,
        _FAIL,
        "A node lacks its internal KEK: check key manager health on every node "
        "(`security key-manager key query`, EMS) and involve NetApp support; " + _RERUN,
    ),
    CodeEntry(
        "65537547",
        "The data SVM's volume encryption keys are stored in the admin SVM's key manager.",
        ErrorClass.FATAL,
        _FAIL,
        "Migrate this SVM's keys first: `POST /api/security/key-managers/{source.uuid}/migrate` "
        'with body `{"uuid": "<destination key manager uuid>"}`; ' + _RERUN,
    ),
    CodeEntry(
        "65537610",
        "The enabled key store configuration is being switched (a failed or interrupted "
        "switch keeps blocking the rekey).",
        ErrorClass.BOUNDED,
        f"retries up to {DEFAULT_BOUNDED_ATTEMPTS} attempts with a longer backoff, "
        "then marks the target `failed`",
        "Complete the switch: `PATCH /api/security/key-stores/{uuid}` with "
        '`{"enabled": true}`, wait for the key store to be `active`; ' + _RERUN,
        base_delay_s=10.0,
        max_delay_s=60.0,
    ),
    CodeEntry(
        "65537919",
        "External rekey failed on one or more nodes.",
        ErrorClass.BOUNDED,
        f"retries up to {DEFAULT_BOUNDED_ATTEMPTS} attempts, then marks the target `failed`",
        "Check that every node is up and reaches $kms (`$reach` in "
        "`ontap-rekey plan`, EMS); " + _RERUN,
    ),
    CodeEntry(
        "65537926",
        "AWS KMS is not configured for the given SVM.",
        ErrorClass.SKIP,
        "marks the target `skipped: not_configured`",
        "Configure AWS KMS for the SVM, or remove it from the inventory.",
    ),
    CodeEntry(
        "65539436",
        "The enabled key store configuration is being initialized.",
        ErrorClass.RETRYABLE,
        "waits and retries with a longer backoff (until attempts, budget or deadline run out)",
        "Usually nothing: the tool waits. If it ends `exhausted`, wait until the key store "
        "is `active` (`GET /api/security/key-stores`); " + _RERUN,
        base_delay_s=KEYSTORE_WAIT_BASE_DELAY_S,
        max_delay_s=KEYSTORE_WAIT_MAX_DELAY_S,
    ),
    CodeEntry(
        "65539437",
        "The enabled key store configuration is being disabled.",
        ErrorClass.FATAL,
        _FAIL,
        "The SVM's key store is being disabled: let it finish (or re-enable it with "
        "`PATCH /api/security/key-stores/{uuid}`); rekey only if the SVM still uses $kms.",
    ),
    # -- issue 15: codes of the other key managers' rekey endpoints ------------------------
    # (reference notes, section 2, the siblings' table; which endpoint documents which code
    # is ENDPOINT_CODES below)
    CodeEntry(
        "65537120",
        "Azure Key Vault is not configured for the given SVM.",
        ErrorClass.SKIP,
        "marks the target `skipped: not_configured`",
        "Configure Azure Key Vault for the SVM, or remove it from the inventory.",
    ),
    CodeEntry(
        "65537721",
        "Google Cloud KMS is not configured for the given SVM.",
        ErrorClass.SKIP,
        "marks the target `skipped: not_configured`",
        "Configure Google Cloud KMS for the SVM, or remove it from the inventory.",
    ),
    CodeEntry(
        "65539817",
        "Barbican KMS is not configured for the given SVM.",
        ErrorClass.SKIP,
        "marks the target `skipped: not_configured`",
        "Configure Barbican KMS for the SVM, or remove it from the inventory.",
    ),
    CodeEntry(
        "65537729",
        "External rekey failed on one or more nodes; ONTAP says to try the rekey again.",
        ErrorClass.RETRYABLE,
        _RETRY + " (until the target's attempts, budget or deadline run out)",
        "Usually nothing: the tool tries again, as ONTAP asks. If it ends `exhausted`, check "
        "that every node reaches Google Cloud KMS (`ekmip_reachability` in `ontap-rekey plan`, "
        "EMS); " + _RERUN,
    ),
    CodeEntry(
        "65537753",
        "The key name contains '/', which is not allowed in `key_name`.",
        ErrorClass.FATAL,
        _FAIL,
        "Give the key's name alone in `key_name` (e.g. `ontap-kek`, not a resource path); put "
        "the ring in `key_ring_name`, its location in `key_ring_location` and the project in "
        "`project_id`; " + _RERUN,
    ),
    CodeEntry(
        "65537755",
        "Google Cloud KMS refused the rekey-external (ONTAP's message names the cause).",
        ErrorClass.FATAL,
        _FAIL,
        "Read ONTAP's message; check that the key, its key ring and project exist, that the key "
        "is enabled and that the cluster's service account may use it "
        "(`security key-manager external gcp show`); " + _RERUN,
    ),
    CodeEntry(
        "65537556",
        "The SVM's external key manager is in a blocked state: ONTAP cannot encrypt or decrypt "
        "with it (e.g. its top-level key is unavailable).",
        # Fatal, not bounded: the docs describe a state the operator must clear (the cloud
        # key disabled or deleted, credentials revoked), not an event that passes by itself;
        # retrying within a run only delays the report. `retry:` can make it bounded.
        ErrorClass.FATAL,
        _FAIL + " (a blocked key manager does not clear by itself; a `retry:` entry can make "
        "it `retryable_bounded`)",
        "Restore access to the SVM's $kms key (enabled, not deleted, credentials valid), check "
        "`security key-manager external $cli show-status`, restore the keys "
        "(`POST $collection/{uuid}/restore`); " + _RERUN,
    ),
    CodeEntry(
        "65537559",
        "There are no internal keys for the SVM: a rekey needs at least one encryption key.",
        ErrorClass.FATAL,
        _FAIL,
        "Nothing to rotate yet: the SVM has no encrypted volume. Create one first, or leave "
        "the SVM out of the selection.",
    ),
    CodeEntry(
        "65537566",
        "Internal error: not all nodes of the cluster are online.",
        ErrorClass.BOUNDED,
        f"retries up to {DEFAULT_BOUNDED_ATTEMPTS} attempts with a long backoff (a takeover or "
        "reboot takes minutes), then marks the target `failed`",
        "Bring every node online (`cluster show`, `storage failover show`); " + _RERUN,
        base_delay_s=30.0,
        max_delay_s=120.0,
    ),
    CodeEntry(
        "65539855",
        "Restoring the keys failed during the rekey.",
        ErrorClass.FATAL,
        _FAIL,
        "Check that every node reaches Azure Key Vault, then restore the keys "
        "(`POST /api/security/azure-key-vaults/{uuid}/restore`) and read the EMS; " + _RERUN,
    ),
    CodeEntry(
        "65539834",
        "Barbican KMS refused the rekey-internal (ONTAP's message names the cause).",
        ErrorClass.FATAL,
        _FAIL,
        "Read ONTAP's message; check that every node reaches Barbican and Keystone and that "
        "the application credentials are valid "
        "(`security key-manager external barbican show-status`); " + _RERUN,
    ),
    CodeEntry(
        "65539844",
        "Barbican KMS could not complete the rekey-internal (ONTAP's message names the cause).",
        ErrorClass.FATAL,
        _FAIL,
        "Read ONTAP's message and the EMS; check the Barbican key (`key_id` URL) is active and "
        "reachable from every node; " + _RERUN,
    ),
    # -- generic codes (any endpoint) -----------------------------------------------------
    CodeEntry(
        "1",
        "Duplicate entry (HTTP 409).",
        ErrorClass.FATAL,
        _FAIL,
        "Another operation created the same object: check for a concurrent rekey or "
        "configuration change on the cluster; " + _RERUN,
    ),
    CodeEntry(
        "2",
        "Invalid field in the request (HTTP 400).",
        ErrorClass.FATAL,
        _FAIL,
        "The cluster does not know a field this tool sent: check its ONTAP version "
        "(9.12 or later); report a bug if it is supported.",
    ),
    CodeEntry(
        "4",
        "Entry not found (HTTP 404).",
        ErrorClass.FATAL,
        _FAIL,
        "The $kms configuration (or job) no longer exists: re-run `ontap-rekey plan` "
        "to rediscover the targets.",
    ),
    CodeEntry(
        "6",
        "Permission denied (HTTP 403).",
        ErrorClass.FATAL,
        _FAIL,
        "Give the account a role that may use `$collection` and "
        "`/api/cluster/jobs` (e.g. `admin`); " + _RERUN,
    ),
    CodeEntry(
        "7",
        "Resource limit exceeded (HTTP 429 or 503).",
        ErrorClass.RETRYABLE,
        _RETRY,
        "Usually nothing; if targets end `exhausted`, lower `--per-cluster`.",
    ),
    CodeEntry(
        "8",
        "Resource in use (HTTP 409 or 503).",
        ErrorClass.RETRYABLE,
        _RETRY,
        "Usually nothing; if it persists, look for another operation on the SVM's keys.",
    ),
    CodeEntry(
        "262160",
        "Too many requests; retry after a short delay (HTTP 429).",
        ErrorClass.RETRYABLE,
        _RETRY,
        "Usually nothing; if targets end `exhausted`, lower `--per-cluster`/`--concurrency` "
        "or raise the REST session limit (`security session limit`).",
    ),
    CodeEntry(
        "262197",
        "Invalid value in the request (HTTP 400).",
        ErrorClass.FATAL,
        _FAIL,
        "Check $key_forms.",
    ),
    CodeEntry(
        "262291",
        "The operation did not complete within the system timeout.",
        ErrorClass.RETRYABLE,
        _RETRY,
        "Usually nothing; if it persists, check the cluster's load and its $kms latency.",
    ),
    CodeEntry(
        "6691623",
        "User not authorized (HTTP 400).",
        ErrorClass.FATAL,
        _FAIL,
        "The account is not authorized for this API: check its role and its SVM "
        "(a vsadmin account cannot rekey the cluster scope); " + _RERUN,
    ),
)

STATUS_TABLE: tuple[ConditionEntry, ...] = (
    ConditionEntry(
        "HTTP 401",
        "Authentication failed.",
        ErrorClass.AUTH,
        "stops the whole cluster at once, no retry; its targets end `skipped: auth_failed`",
        "Fix the credentials for this cluster (`auth:` in the inventory); the tool never "
        "retries a 401, so the account is not locked out.",
    ),
    ConditionEntry("HTTP 403", "Forbidden.", ErrorClass.FATAL, _FAIL, "See code 6."),
    ConditionEntry("HTTP 404", "Not found.", ErrorClass.FATAL, _FAIL, "See code 4."),
    ConditionEntry(
        "HTTP 409",
        "Conflict without a known code.",
        ErrorClass.FATAL,
        _FAIL,
        "Look for a concurrent operation on the SVM's keys; " + _RERUN,
    ),
    ConditionEntry(
        "HTTP 429",
        "Too many requests.",
        ErrorClass.RETRYABLE,
        _RETRY,
        "Usually nothing; if targets end `exhausted`, lower `--per-cluster`.",
    ),
    ConditionEntry(
        "HTTP 500",
        "Internal error without a known code.",
        ErrorClass.FATAL,
        _FAIL,
        "Check the cluster's EMS (`event log show`) around the time of the attempt; " + _RERUN,
    ),
    ConditionEntry(
        "HTTP 502, 503, 504",
        "Bad gateway, service unavailable, gateway timeout.",
        ErrorClass.RETRYABLE,
        _RETRY + " (a gateway's 502/504 to the rekey POST is settled first, as uncertain)",
        "Usually nothing; if targets end `exhausted`, check the cluster's health and load.",
    ),
    ConditionEntry(
        "other 4xx/5xx",
        "Any other error status without a known code.",
        ErrorClass.FATAL,
        _FAIL,
        "Read ONTAP's message in the report; " + _RERUN,
    ),
)

KIND_TABLE: tuple[ConditionEntry, ...] = (
    ConditionEntry(
        "connect",
        "Connection refused, reset or timed out before the request was sent.",
        ErrorClass.RETRYABLE,
        _RETRY + "; repeated failures open the cluster's circuit breaker",
        "Check that the cluster management address and port are reachable from here.",
    ),
    ConditionEntry(
        "sent (POST)",
        "Read timeout or dropped connection after the rekey POST may have reached ONTAP.",
        ErrorClass.UNCERTAIN,
        "never re-POSTs blindly: settles from the cluster's jobs, key store state and key id "
        "first; re-sends only when it proves nothing was submitted",
        "Usually nothing; a target that cannot be settled ends `unverified`: check it with "
        "`security key-manager external $cli show`.",
    ),
    ConditionEntry(
        "sent (GET)",
        "Read timeout or dropped connection on a read.",
        ErrorClass.RETRYABLE,
        _RETRY,
        "Usually nothing; if it persists, check the network path and the cluster's load.",
    ),
    ConditionEntry(
        "tls",
        "TLS handshake or certificate verification failed.",
        ErrorClass.FATAL,
        "at discovery the cluster's targets end `skipped: tls_failed` (nothing is sent); "
        "verification is never switched off silently",
        "If the cluster uses a private or self-signed CA, set `tls: {ca_bundle: path/to/ca.pem}` "
        "for it in the inventory (`tls: {verify: false}` only for a lab).",
    ),
    ConditionEntry(
        "protocol",
        "The answer is not ONTAP's API (not JSON, unexpected shape, paging loop).",
        ErrorClass.FATAL,
        _FAIL + " (an unreadable answer to the rekey POST is settled first, as uncertain)",
        "Check that `host` points at the cluster management interface, not a proxy or a web page.",
    ),
    ConditionEntry(
        "job failed, unknown code",
        "The rekey job ended in `failure` with a code not in the table.",
        ErrorClass.FATAL,
        _FAIL,
        "Read the job's message in the report and the cluster's EMS; " + _RERUN,
    ),
)

# -- issue 15: which codes each key manager's rekey endpoint documents -------------------

_SHARED_REKEY_CODES = (
    "65537538", "65537543", "65537547", "65537610", "65537919", "65539436", "65539437",
)  # fmt: skip
"""The AWS rekey-external codes (reference notes, section 2) but its not-configured code:
the siblings' table lists only the codes *beyond* these."""

ENDPOINT_CODES: Mapping[tuple[Provider, Operation], tuple[str, ...]] = MappingProxyType(
    {
        (Provider.AWS, Operation.EXTERNAL): (*_SHARED_REKEY_CODES, "65537926"),
        (Provider.AWS, Operation.INTERNAL): (
            *_SHARED_REKEY_CODES, "65537926", "65537556", "65537559", "65537566",
        ),
        (Provider.AZURE, Operation.EXTERNAL): (*_SHARED_REKEY_CODES, "65537120", "65539855"),
        (Provider.AZURE, Operation.INTERNAL): (*_SHARED_REKEY_CODES, "65537120", "65537559"),
        (Provider.GCP, Operation.EXTERNAL): (
            *_SHARED_REKEY_CODES, "65537721", "65537729", "65537753", "65537755", "65537556",
        ),
        (Provider.GCP, Operation.INTERNAL): (
            *_SHARED_REKEY_CODES, "65537721", "65537556", "65537559",
        ),
        (Provider.BARBICAN, Operation.INTERNAL): (
            *_SHARED_REKEY_CODES, "65539817", "65539834", "65539844",
        ),
    }
)  # fmt: skip
"""The ONTAP codes documented for each rekey endpoint (a code keeps one meaning and one
class everywhere; the provider and operation choose the words of its hint)."""

NOT_CONFIGURED_CODES: Mapping[Provider, str] = MappingProxyType(
    {
        Provider.AWS: "65537926",
        Provider.AZURE: "65537120",
        Provider.GCP: "65537721",
        Provider.BARBICAN: "65539817",
    }
)

_KEY_FORMS = {
    Provider.AWS: "the `key_id` the inventory gives this target (AWS key id, ARN or alias)",
    Provider.AZURE: "the `key_id` the inventory gives this target (the vault key URL, "
    "https://<vault>.vault.azure.net/keys/<name>[/<version>])",
    Provider.GCP: "the `key_name` the inventory gives this target (the key's name, without "
    "`/`) and its `project_id`, `key_ring_location`, `key_ring_name`",
    Provider.BARBICAN: "the request (Barbican takes no key in a rekey-internal)",
}
_CLOUD = {
    Provider.AWS: "AWS",
    Provider.AZURE: "Azure",
    Provider.GCP: "Google Cloud",
    Provider.BARBICAN: "OpenStack",
}


def _words(provider: Provider, operation: Operation) -> dict[str, str]:
    """What `$kms`, `$cloud`, `$cli`, `$collection`, `$reach` and `$key_forms` stand for."""
    provider_spec = PROVIDERS[provider]
    key_forms = _KEY_FORMS[provider]
    if operation is Operation.INTERNAL:
        key_forms = "the request's `return_timeout` (0..120); a rekey-internal sends no key"
    return {
        "kms": provider_spec.title,
        "cloud": _CLOUD[provider],
        "cli": provider_spec.cli,
        "reach": "ekmip_reachability"
        if provider_spec.has_ekmip
        else provider_spec.reachability_field,
        "collection": provider_spec.collection,
        "key_forms": key_forms,
    }


def render(text: str, provider: Provider, operation: Operation) -> str:
    """A table text in the words of one provider and operation (`$kms` -> `Azure Key Vault`)."""
    return Template(text).safe_substitute(_words(provider, operation))


def _rendered(rule: RetryRule, provider: Provider, operation: Operation) -> RetryRule:
    return replace(rule, hint=render(rule.hint, provider, operation))


HINTS: Mapping[str, str] = MappingProxyType(
    {e.code: render(e.remedy, Provider.AWS, Operation.EXTERNAL) for e in ERROR_TABLE}
)
"""The remediation hint for every documented ONTAP code, in AWS rekey-external's words
(logs, reports and docs share it; `hint_for` renders other providers)."""

_CODES: Mapping[str, CodeEntry] = MappingProxyType({entry.code: entry for entry in ERROR_TABLE})
_CONDITIONS: Mapping[str, ConditionEntry] = MappingProxyType(
    {entry.condition: entry for entry in STATUS_TABLE + KIND_TABLE}
)
_STATUS_ROWS: Mapping[int, str] = MappingProxyType(
    {401: "HTTP 401", 403: "HTTP 403", 404: "HTTP 404", 409: "HTTP 409", 429: "HTTP 429"}
    | {500: "HTTP 500", 502: "HTTP 502, 503, 504", 503: "HTTP 502, 503, 504"}
    | {504: "HTTP 502, 503, 504"}
)


def describe_code(
    code: str | None,
    provider: Provider = Provider.AWS,
    operation: Operation = Operation.EXTERNAL,
) -> str:
    """What an ONTAP code means, in one sentence."""
    entry = _CODES.get(code or "")
    if entry is not None:
        return render(entry.meaning, provider, operation)
    return "No ONTAP code." if code is None else f"ONTAP code {code} (not in this tool's table)."


def hint_for(
    code: str | None,
    status: int | None = None,
    provider: Provider = Provider.AWS,
    operation: Operation = Operation.EXTERNAL,
) -> str:
    """The operator's remediation hint for a code, else for the HTTP status."""
    if code is not None:
        entry = _CODES.get(code)
        return render(entry.remedy, provider, operation) if entry else _unknown_code_hint(code)
    return render(_status_entry(status).remedy, provider, operation)


def classify(
    error: OntapError,
    overrides: Mapping[str, RetryOverride] = NO_OVERRIDES,
    *,
    provider: Provider = Provider.AWS,
    operation: Operation = Operation.EXTERNAL,
) -> RetryRule:
    """The rule for `error` on a target of `provider` during `operation`, with the
    inventory's override for its code applied (the defaults are AWS rekey-external).

    Total: every OntapError gets a rule, and this never raises. A 401 is never
    overridden: retrying it would lock the account. The provider and operation choose
    the words of the hint; a code keeps one class on every endpoint that documents it.
    """
    rule = _rendered(_builtin_rule(error), provider, operation)
    override = overrides.get(error.code) if error.code is not None else None
    if override is None or rule.error_class is ErrorClass.AUTH:
        return rule
    return apply_override(rule, override)


def apply_override(rule: RetryRule, override: RetryOverride) -> RetryRule:
    """`rule` with the override's fields; a new class starts from that class's limits."""
    if override.error_class is not None and override.error_class is not rule.error_class:
        rule = _class_defaults(override.error_class, rule.hint)
    return replace(
        rule,
        max_attempts=rule.max_attempts if override.max_attempts is None else override.max_attempts,
        base_delay_s=rule.base_delay_s if override.base_delay_s is None else override.base_delay_s,
        max_delay_s=rule.max_delay_s if override.max_delay_s is None else override.max_delay_s,
    )


def _builtin_rule(error: OntapError) -> RetryRule:
    """The decision order of the module docstring."""
    if error.kind is ErrorKind.TLS:
        return _CONDITIONS["tls"].rule()
    if error.status == 401:
        return _CONDITIONS["HTTP 401"].rule()
    if error.kind is ErrorKind.CONNECT:
        return _CONDITIONS["connect"].rule()
    if error.maybe_sent and error.kind in (ErrorKind.SENT, ErrorKind.PROTOCOL):
        return _CONDITIONS["sent (POST)"].rule()
    entry = _CODES.get(error.code or "")
    if entry is not None:
        return entry.rule()
    if error.status in TRANSIENT_STATUSES:
        return _status_entry(error.status).rule()
    if error.kind is ErrorKind.SENT:
        return _CONDITIONS["sent (GET)"].rule()
    if error.code is not None:
        return _class_defaults(ErrorClass.FATAL, _unknown_code_hint(error.code))
    return _fallback_entry(error).rule()


def _fallback_entry(error: OntapError) -> ConditionEntry:
    if error.status is not None and error.status >= 400:
        return _status_entry(error.status)
    if error.kind is ErrorKind.JOB:
        return _CONDITIONS["job failed, unknown code"]
    return _CONDITIONS["protocol"]


def _status_entry(status: int | None) -> ConditionEntry:
    return _CONDITIONS[_STATUS_ROWS.get(status or 0, "other 4xx/5xx")]


def _unknown_code_hint(code: str) -> str:
    return (
        f"ONTAP code {code} is not in this tool's table, so it is treated as fatal: read "
        "ONTAP's message and the cluster's EMS; add a `retry:` entry for it in the inventory "
        "if it is known to be transient."
    )


def errors_markdown() -> str:
    """`docs/errors.md`, generated from the tables (a test keeps the file in sync)."""
    lines = [
        "# Errors: what ontap-rekey does and what you should do",
        "",
        "<!-- Generated from orchestrator/core/policy.py by errors_markdown(); do not edit. -->",
        "<!-- Regenerate: .venv/bin/python -c 'from orchestrator.core.policy import "
        'errors_markdown as m; print(m(), end="")\' > docs/errors.md -->',
        "",
        "Classes: `retryable` (backoff and retry), `retryable_bounded` (a few attempts, then "
        "`failed`), `uncertain` (settle before any re-send), `auth` (stop the cluster), "
        "`skip`, `fatal` (`failed` with the hint). A code that is not listed is `fatal`. "
        "Each code can be overridden in the inventory's `retry:` section "
        "(`error_class`, `max_attempts`, `base_delay_s`, `max_delay_s`), except a 401.",
        "",
        "## ONTAP codes",
        "",
        *_markdown_rows("code", [(f"`{e.code}`", _aws(e)) for e in _general_codes()]),
        "",
        "## HTTP statuses without a known code",
        "",
        *_markdown_rows("status", [(e.condition, _aws(e)) for e in STATUS_TABLE]),
        "",
        "## Transport and protocol failures",
        "",
        *_markdown_rows("condition", [(e.condition, _aws(e)) for e in KIND_TABLE]),
        *_endpoint_sections(),
    ]
    return "\n".join(lines) + "\n"


def _general_codes() -> list[CodeEntry]:
    """AWS rekey-external's codes and the generic ones (the others: per endpoint, below)."""
    aws = ENDPOINT_CODES[(Provider.AWS, Operation.EXTERNAL)]
    elsewhere = {code for codes in ENDPOINT_CODES.values() for code in codes}
    return [e for e in ERROR_TABLE if e.code in aws or e.code not in elsewhere]


def _aws(entry: E) -> E:
    """An entry in AWS rekey-external's words (the general tables keep today's text)."""
    return replace(
        entry,
        meaning=render(entry.meaning, Provider.AWS, Operation.EXTERNAL),
        remedy=render(entry.remedy, Provider.AWS, Operation.EXTERNAL),
    )


def _endpoint_sections() -> list[str]:
    """One table per key manager and rotation: the codes its endpoint documents."""
    lines = [
        "",
        "## Per key manager and rotation",
        "",
        "The codes each rekey endpoint documents, in that key manager's words. The generic "
        "codes, HTTP statuses and transport failures above apply to every endpoint. A code "
        "has the same class wherever it appears, and one `retry:` entry overrides it "
        "everywhere.",
    ]
    for (provider, operation), since in REKEY_SINCE.items():
        title = PROVIDERS[provider].title
        path = f"{PROVIDERS[provider].collection}/{{uuid}}/rekey-{operation.value}"
        rows = [
            (f"`{code}`", _rendered_entry(_CODES[code], provider, operation))
            for code in sorted(ENDPOINT_CODES[(provider, operation)], key=int)
        ]
        lines += [
            "",
            f"### {title}, rekey-{operation.value} (ONTAP {since[0]}.{since[1]}+)",
            "",
            f"`POST {path}`",
            "",
            *_markdown_rows("code", rows),
        ]
    return lines


def _rendered_entry(entry: CodeEntry, provider: Provider, operation: Operation) -> CodeEntry:
    return replace(
        entry,
        meaning=render(entry.meaning, provider, operation),
        action=render(entry.action, provider, operation),
        remedy=render(entry.remedy, provider, operation),
    )


def _markdown_rows(head: str, rows: Sequence[tuple[str, CodeEntry | ConditionEntry]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    out = [f"| {head} | meaning | class | what the tool does | what you should do |"]
    out.append("|---|---|---|---|---|")
    for key, e in rows:
        cells = (key, e.meaning, f"`{e.error_class.value}`", e.action, e.remedy)
        out.append("| " + " | ".join(cell(c) for c in cells) + " |")
    return out
