"""Remediation hints: per error code (the policy table) and per outcome reason.

The code hints live in `orchestrator.core.policy` (shared by logs, reports and
docs/errors.md). A target often has no ONTAP code at all (an old ONTAP version, a cluster
that died mid-run, a read-back that did not confirm), and one generic "read ONTAP's
message" would serve them all: `REASON_HINTS` says what to do for each outcome reason.
"""

from __future__ import annotations

from typing import Final

from orchestrator.core import policy

_RERUN: Final = "then re-run its targets (`--targets @failed.txt`)"
_CHECK_KEY: Final = (
    "read the key id on the cluster (`GET /api/security/aws-kms/{uuid}?fields=key_id,state`) "
    "before re-running it: the rekey may have taken effect"
)

REASON_HINTS: Final[dict[str, str]] = {
    # skipped
    "unsupported_version": (
        "The cluster's ONTAP version has no such rotation for this key manager (AWS KMS "
        "9.12+, Azure and GCP rekey-external 9.11+, rekey-internal 9.10+, Barbican "
        f"rekey-internal only, 9.17+): upgrade the cluster, {_RERUN}."
    ),
    "unreachable": (
        "The cluster did not answer discovery: check its address in the inventory, DNS, "
        "the route and the cluster management LIF (`curl https://<cluster>/api/cluster`), "
        f"{_RERUN}."
    ),
    "auth_failed": (
        "The cluster refused the credentials (401): nothing more was sent, so the account is "
        "not locked out. Fix the user, password or certificate in the inventory (and unlock "
        f"the account on the cluster if needed), {_RERUN}."
    ),
    "circuit_open": (
        "The cluster stopped answering mid-run (consecutive connection failures opened its "
        "circuit): check the cluster's health and the network to it, " + _RERUN + "."
    ),
    "not_configured": "The SVM has no cloud key manager configuration the run may rekey "
    "(AWS KMS, Azure Key Vault, Google Cloud KMS, Barbican; `providers:` narrows them): "
    "configure one, or drop the SVM from the inventory.",
    "identity_mismatch": (
        "The address answers as another cluster than the one recorded: fix the inventory's "
        "address or `uuid:` (never rekey the wrong cluster), " + _RERUN + "."
    ),
    # unverified
    "cannot_settle": f"The rekey's fate could not be proven either way: {_CHECK_KEY}.",
    "read_back_failed": f"The job succeeded but the configuration could not be read back: "
    f"{_CHECK_KEY}.",
    "cluster_unreachable_while_settling": f"The cluster stopped answering while an attempt was "
    f"being settled: when it is back, {_CHECK_KEY}.",
    "key_id_mismatch": "After the rekey the configuration shows another key id than the "
    "intended one: check the key id in the inventory and on the cluster before a re-run.",
    "auth_failed_while_settling": f"The cluster refused the credentials while an attempt was "
    f"being settled: fix them, then {_CHECK_KEY}.",
    # exhausted
    "retry_budget": (
        "The run's or the cluster's retry budget ran out (many transient errors at once): "
        f"check the cluster's load and health, {_RERUN}."
    ),
    "deadline": (
        "The --deadline passed while the target was waiting for a retry: `resume` the run (a "
        "fresh window), or re-run with a longer --deadline."
    ),
    # aborted: the run stopped before the target started
    "failure_budget": "Not started: the failure budget stopped the run. Fix the failures "
    "above, then `resume` the run.",
    "fail_fast": "Not started: --fail-fast stopped the run at the first failure. Fix it, "
    "then `resume` the run.",
    "canary_failed": "Not started: the canary was not rekeyed. Fix the canary's error, then "
    "`resume` the run.",
    "interrupt": "Not started: the run was interrupted. `resume` the run.",
    # skipped (run) / not ready (plan)
    "tls_failed": "Certificate verification or the TLS handshake failed: check the cluster's "
    "certificate and `tls.ca_bundle` in the inventory.",
    "kms_unreachable": "The key manager is not reachable from the cluster or a node: check "
    "the cluster's route, proxy and DNS to it.",
    "config_unhealthy": "The key manager configuration is unhealthy (`state.cluster_state` "
    "false): "
    "fix it on the cluster first.",
    "keystore_initializing": "The key store is still initializing: wait until it is `active`, "
    "then plan again.",
    "keystore_switching": "The key store is switching: complete the switch "
    "(`PATCH /api/security/key-stores/{uuid}`), then plan again.",
    "keystore_rekey_running": "A rekey is already running on the key store: wait for it, "
    "then plan again.",
}


def hint_for(code: str | None, status: int | None = None, *, recorded: str | None = None) -> str:
    """The hint to show for an error: the one the ledger recorded, else the policy's."""
    if recorded:
        return recorded
    return policy.hint_for(code, status)


def hint_for_outcome(reason: str | None, code: str | None, recorded: str | None) -> str:
    """The hint for a target that was not rekeyed: its reason's, else its error code's."""
    if reason is not None and reason in REASON_HINTS:
        return REASON_HINTS[reason]
    if reason is not None and reason.startswith("key_store_"):
        state = reason.removeprefix("key_store_")
        return f"The key store was `{state}` after the rekey: {_CHECK_KEY}."
    return hint_for(code, recorded=recorded)


def describe_code(code: str | None) -> str:
    """What an ONTAP error code means, in a few words ("" when unknown)."""
    return policy.describe_code(code) if code else ""
