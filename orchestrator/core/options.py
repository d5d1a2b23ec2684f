"""Run options: built-in defaults, inventory `defaults:`, the command line, the emergency profile.

Precedence: the command line wins, then the inventory's `defaults:`, then the built-in
values below. `--emergency` replaces the built-in and inventory values (no waves,
`--per-cluster` 4, no fail-fast, no failure budget, shorter backoff), and an option given
on the command line still wins over the profile.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from orchestrator.core.inventory import RunDefaults
from orchestrator.core.providers import Operation
from orchestrator.core.selectors import Selection
from orchestrator.core.waves import parse_waves

DEFAULT_CONCURRENCY = 64
DEFAULT_PER_CLUSTER = 2
DEFAULT_WAVES = "1,10%,100%"
DEFAULT_MAX_FAIL_PERCENT = 10.0
DEFAULT_MIN_FAIL_SAMPLE = 5
DEFAULT_RETURN_TIMEOUT = 30
DEFAULT_MAX_ATTEMPTS = 6
DEFAULT_RUN_RETRY_BUDGET = 1000  # retries across the whole run
DEFAULT_CLUSTER_RETRY_BUDGET = 100  # retries per cluster
DEFAULT_RETRY_AFTER_CAP_S = 60.0
DEFAULT_BREAKER_THRESHOLD = 5  # consecutive transport failures that open a cluster's circuit
DEFAULT_BREAKER_COOLDOWN_S = 30.0
DEFAULT_REQUEST_TIMEOUT_S = 60.0  # read timeout: above return_timeout, which ONTAP honours
DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_DISCOVERY_TIMEOUT_S = 30.0  # per cluster, retries included: a hung cluster is skipped
SETTLE_WINDOW_FACTOR = 2.0  # times the request timeout: see RunOptions.settle_window_s

EMERGENCY_PER_CLUSTER = 4
EMERGENCY_BACKOFF_SCALE = 0.25  # emergency: a quarter of the usual initial backoff


@dataclass(frozen=True)
class RunOptions:
    """Every knob of a run; stored with the run in the ledger so `resume` reuses them."""

    concurrency: int = DEFAULT_CONCURRENCY
    per_cluster: int = DEFAULT_PER_CLUSTER
    waves: str = DEFAULT_WAVES
    max_fail_percent: float | None = DEFAULT_MAX_FAIL_PERCENT  # None: no failure budget
    min_fail_sample: int = DEFAULT_MIN_FAIL_SAMPLE
    fail_fast: bool = False
    deadline_s: float | None = None  # seconds from the start; no new attempt after it
    return_timeout: int = DEFAULT_RETURN_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    run_retry_budget: int = DEFAULT_RUN_RETRY_BUDGET
    cluster_retry_budget: int = DEFAULT_CLUSTER_RETRY_BUDGET
    retry_after_cap_s: float = DEFAULT_RETRY_AFTER_CAP_S
    backoff_scale: float = 1.0
    breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD
    breaker_cooldown_s: float = DEFAULT_BREAKER_COOLDOWN_S
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    discovery_timeout_s: float = DEFAULT_DISCOVERY_TIMEOUT_S
    emergency: bool = False
    reason: str | None = None
    per_cluster_explicit: bool = False  # --per-cluster given: it wins over inventory levels
    skip_not_ready: bool = False  # targets the plan calls not ready end `skipped: not_ready`
    rekey: Operation = Operation.EXTERNAL  # issue 15: --rekey, else `defaults: {rekey: ...}`
    # Each cluster's targets start as soon as it is discovered (`engine.overlap`); set by
    # `run` (`overlaps_discovery`), kept so `resume` discovers the clusters a kill left
    # without rows.
    overlap_discovery: bool = False

    @property
    def settle_window_s(self) -> float:
        """How long after its intent a POST without any trace may still take effect.

        A POST the client gave up on (read timeout, dropped connection, a crash) may still
        sit in the cluster's queue. It is proven never submitted only when, this long after
        the intent, there is still no job, no rekey in flight and no new key id. Twice the
        request timeout: the cluster held the request at least one timeout already.
        """
        return SETTLE_WINDOW_FACTOR * self.request_timeout_s

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunOptions:
        """The options a run stored (`to_json`; the record keeps its TLS flag and a plan's
        estimate in fields of their own, ledger migration 5).

        Raises ValueError naming any other key: a ledger from another release, or edited
        by hand, must not be resumed with a knob silently dropped.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown run option {unknown[0]!r} in the stored run")
        given = {k: v for k, v in data.items() if k in known}
        if "rekey" in given:  # stored as its string value
            given["rekey"] = Operation(given["rekey"])
        return cls(**given)


def resolve_options(cli: dict[str, Any], inventory: RunDefaults) -> RunOptions:
    """Merge the command line (only the options actually given) over the inventory defaults.

    `cli` maps RunOptions field names to values; None means "not given".
    """
    given = {k: v for k, v in cli.items() if v is not None}
    base = _with_inventory_defaults(RunOptions(), inventory)
    if given.get("emergency"):
        base = emergency_profile(base)
    return replace(base, **given, per_cluster_explicit="per_cluster" in given)


def emergency_profile(base: RunOptions) -> RunOptions:
    """The emergency profile over `base`: every reachable target is attempted.

    No failure budget (an incident's SVMs must all be rekeyed even when some fail; the
    per-cluster circuit breaker still stops a cluster that is down or refuses the login),
    no fail-fast, no waves, `--per-cluster` 4, a quarter of the usual backoff.
    """
    return replace(
        base,
        waves="100%",
        per_cluster=EMERGENCY_PER_CLUSTER,
        fail_fast=False,
        max_fail_percent=None,
        backoff_scale=EMERGENCY_BACKOFF_SCALE,
    )


def _with_inventory_defaults(base: RunOptions, inventory: RunDefaults) -> RunOptions:
    from_inventory = {k: v for k, v in asdict(inventory).items() if v is not None}
    return replace(base, **from_inventory)


def cluster_limit(options: RunOptions, inventory_per_cluster: int | None) -> int:
    """The per-cluster concurrency of one cluster: `--per-cluster` wins over the inventory."""
    if options.per_cluster_explicit or options.emergency or inventory_per_cluster is None:
        return options.per_cluster
    return inventory_per_cluster


def overlaps_discovery(options: RunOptions, selection: Selection, *, confirmed: bool) -> bool:
    """Whether a run starts each cluster's targets as soon as that cluster is discovered,
    instead of after the last one (issue 16: 2,500 clusters took ~23 s to discover and
    plan, the rotation waiting on the slowest cluster's answers).

    Only where nothing decided over the whole fleet comes before the first POST:
    `confirmed` ahead (`--yes`: nobody reads the plan summary before it), one wave (a
    canary and wave sizes need every target's verdict), not `--emergency` (its priority
    order runs across clusters), and a selection by clusters (`--svm`/`--targets` that
    match nothing are exit 2 before any POST, known only once every cluster answered).
    The engine overlaps only when the clusters' limits add up to more than `--concurrency`
    (`engine.runner.pool_lanes`: clusters rotated a few at a time, the later ones'
    discovery hidden behind the earlier ones' rotation); otherwise every cluster starts at
    once and the last one discovered sets the end either way, so the run plans first and
    records `overlap_discovery` false.
    """
    return (
        confirmed
        and not options.emergency
        and len(parse_waves(options.waves)) == 1
        and selection.by_clusters
    )
