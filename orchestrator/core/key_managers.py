"""Pure decisions the engine takes per target once discovery knows its key manager
(issue 15): which collections to read, whether the inventory allows the provider, and
whether the cluster's version has the rotation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.core.inventory import ClusterSpec, ProviderSet
from orchestrator.core.providers import PROVIDERS, Operation, Provider, rekey_supported
from orchestrator.core.providers import unsupported_reason as _unsupported_reason
from orchestrator.core.targets import SkipReason


@dataclass(frozen=True)
class Skip:
    """A target decided before any POST: `skipped` with this reason and message."""

    reason: SkipReason
    message: str


def provider_allowed(allowed: ProviderSet, provider: Provider) -> bool:
    """True when `providers:` (None: every provider) lets this provider's configs be targets."""
    return allowed is None or provider in allowed


def providers_to_discover(spec: ClusterSpec) -> tuple[Provider, ...]:
    """The collections a cluster's discovery must read: every provider any of its targets
    may use (the cluster's own for `svms: all` and the cluster scope, and each SVM entry's),
    in the table's order."""
    sets: list[ProviderSet] = [entry.providers for entry in spec.svms]
    if spec.all_svms or spec.include_cluster_scope or not spec.svms:
        sets.append(spec.providers)
    return _union(sets)


def target_skip(
    provider: Provider,
    operation: Operation,
    version: Iterable[int],
    allowed: ProviderSet,
) -> Skip | None:
    """Why this discovered configuration is not rekeyed in this run, or None to go on.

    A provider the inventory does not allow is `not_configured` for the target (it has
    no key manager the run may touch); a rotation the cluster lacks is
    `unsupported_version` (Barbican's rekey-external never exists).
    """
    if not provider_allowed(allowed, provider):
        names = ", ".join(p.value for p in allowed or ())
        return Skip(
            SkipReason.NOT_CONFIGURED,
            f"the SVM uses {PROVIDERS[provider].title}; the inventory allows providers: [{names}]",
        )
    if not rekey_supported(provider, operation, version):
        return Skip(
            SkipReason.UNSUPPORTED_VERSION, _unsupported_reason(provider, operation, version)
        )
    return None


def _union(sets: Iterable[ProviderSet]) -> tuple[Provider, ...]:
    chosen: set[Provider] = set()
    for allowed in sets:
        if allowed is None:
            return tuple(PROVIDERS)
        chosen.update(allowed)
    return tuple(p for p in PROVIDERS if p in chosen)


def expected_key_after(operation: Operation, *, before: str, intended: str) -> str:
    """The key id the read-back must show once the rekey succeeded.

    An internal rekey replaces the SVM's own KEK and leaves the cloud key id as it was,
    so it cannot be proven by the key id: settle it from the job and the key store state,
    and verify that the id did not change. An external rekey shows the intended key.
    """
    return before if operation is Operation.INTERNAL else intended
