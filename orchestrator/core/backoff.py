"""How every loop waits, and retry budgets: pure, deterministic given `rand`.

One table (`WAITS`) declares each loop's `WaitPolicy`: the retry backoff, the job poll,
the settle, the read-back, the read-back batches, discovery's retries and the ledger
lock's contention wait; `next_delay` is the one formula they all use (and `wait_until`
the one clamp for a pause towards a known moment). The engine and the ledger only sleep
what these return, so a newcomer changes a delay here, once.

Exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter"): spreading retries uniformly over [0, ceiling] keeps many targets that failed
together from retrying together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from types import MappingProxyType

# factor**63 seconds is far past any cap; stopping the growth there keeps the float finite.
_MAX_DOUBLINGS = 63


class Hint(Enum):
    """How a server's `Retry-After` combines with a policy's own delay."""

    LONGER = "longer"  # the longer of both: the jitter still spreads what failed together
    REPLACES = "replaces"  # the server's wait instead of ours (capped)


@dataclass(frozen=True)
class WaitPolicy:
    """How one loop waits between its tries.

    Try `n` (1-based) waits `min(cap_s, base_s * factor**(n-1))`, the *ceiling*; with
    `jitter`, a uniform fraction of it (full jitter); never less than `floor_s`. `tries`
    and `within_s` are the loop's limits (0 and infinity: none here, the caller's options
    bound it); each caller's comment says what it counts.
    """

    base_s: float
    cap_s: float
    factor: float = 2.0
    jitter: bool = False
    floor_s: float = 0.0
    tries: int = 0
    within_s: float = math.inf
    hint: Hint = Hint.LONGER

    def __post_init__(self) -> None:
        if self.factor < 1.0 or math.isnan(self.factor):
            raise ValueError("a wait policy's factor must be >= 1 (ceilings never shrink)")
        if not 0.0 <= self.floor_s <= max(0.0, self.cap_s):
            raise ValueError("a wait policy's floor must lie within [0, cap]")

    def bounded(self, base_s: float, cap_s: float) -> WaitPolicy:
        """This policy with another base and cap (a retry rule's own delays)."""
        return replace(self, base_s=base_s, cap_s=cap_s)

    def scaled(self, scale: float) -> WaitPolicy:
        """This policy with its base multiplied by `scale` (`--emergency`: a quarter)."""
        return replace(self, base_s=self.base_s * scale)


class Purpose(Enum):
    """The loops that wait, one policy each in `WAITS`."""

    RETRY = "retry"  # a retry backoff (slots released): the default, a rule may bound it
    POLL = "poll"  # following a rekey job
    SETTLE = "settle"  # settling an uncertain POST: between settle reads
    SETTLE_EARLY = "settle_early"  # settling while it is too early to tell
    READ_BACK = "read_back"  # between read-backs of one target
    READ_BACK_PENDING = "read_back_pending"  # while its key store is still in `svm_kek_rekey`
    READ_BACK_BATCH = "read_back_batch"  # between one cluster's read-back batches
    DISCOVERY = "discovery"  # retrying a discovery GET
    LOCK = "lock"  # the ledger lock held by another process for an instant


WAITS: Mapping[Purpose, WaitPolicy] = MappingProxyType(
    {
        # tries: the rule's or `--max-attempts`; a rule's own base and cap replace these
        # (`bounded`), `--emergency` scales the base, `Retry-After` is honoured up to
        # `--retry-after-cap` (the longer wins)
        Purpose.RETRY: WaitPolicy(base_s=1.0, cap_s=30.0, jitter=True),
        # 1, 1.5, 2.25 ... 10 s; tries: failed job GETs in a row, then the job counts as
        # lost (as NetApp's Ansible collection); within: a job still running after an
        # hour, then its outcome is not known
        Purpose.POLL: WaitPolicy(base_s=1.0, cap_s=10.0, factor=1.5, tries=3, within_s=3600.0),
        # tries: failed settle reads in a row, then `unverified` (never guess, never re-send)
        Purpose.SETTLE: WaitPolicy(base_s=2.0, cap_s=2.0, factor=1.0, tries=8),
        # until the settle window ends (`wait_until`), at most 15 s a pause; tries: settles
        # that found it too early to tell (~10 minutes), then `unverified`
        Purpose.SETTLE_EARLY: WaitPolicy(
            base_s=15.0, cap_s=15.0, factor=1.0, floor_s=0.05, tries=300
        ),
        # tries: failed reads in a row, then `unverified: read_back_failed`
        Purpose.READ_BACK: WaitPolicy(base_s=1.0, cap_s=1.0, factor=1.0, tries=3),
        # tries: reads of a key store still in `svm_kek_rekey` (about 2 minutes)
        Purpose.READ_BACK_PENDING: WaitPolicy(base_s=1.0, cap_s=1.0, factor=1.0, tries=120),
        # at most one batch per cluster per second; within: the longest a read-back waits
        # for the rest of a busy cluster (`ReadBackBatcher.busy_wait_s`)
        Purpose.READ_BACK_BATCH: WaitPolicy(base_s=1.0, cap_s=1.0, factor=1.0, within_s=120.0),
        # 0.5 then 1 s; tries: attempts of one discovery GET; a `Retry-After` replaces
        # the delay (capped); the whole discovery is bounded by `--discovery-timeout`
        Purpose.DISCOVERY: WaitPolicy(base_s=0.5, cap_s=5.0, tries=3, hint=Hint.REPLACES),
        # within: how long the lock is retried before refusing, and a holder's name waited
        # for (a `holder()` probe holds it for an instant; a new holder writes its name
        # just after taking it: neither should make anyone refuse or report nonsense)
        Purpose.LOCK: WaitPolicy(base_s=0.01, cap_s=0.01, factor=1.0, within_s=0.25),
    }
)
"""Every loop's wait, in one place."""


def next_delay(
    policy: WaitPolicy,
    attempt: int,
    rand: Callable[[], float] | None = None,
    *,
    retry_after: float | None = None,
    retry_after_cap_s: float | None = None,
) -> float:
    """The pause before try `attempt` (1 is the first retry, or the first poll).

    The policy's ceiling, a `rand()` fraction of it when the policy jitters (then `rand`
    is required), at least `floor_s`; a positive `retry_after` (seconds, capped to
    `retry_after_cap_s`, else to the policy's cap) combines as the policy's `hint` says
    (a zero asks for no wait: the policy's own delay stands).
    """
    ceiling = _ceiling(attempt, policy.base_s, policy.cap_s, policy.factor)
    if policy.jitter:
        if rand is None:
            raise ValueError("a jittered wait policy needs a random source")
        delay = _fraction(rand()) * ceiling
    else:
        delay = ceiling
    cap = policy.cap_s if retry_after_cap_s is None else retry_after_cap_s
    hinted = retry_after_delay(retry_after, cap)
    if hinted:
        delay = hinted if policy.hint is Hint.REPLACES else max(delay, hinted)
    return max(delay, policy.floor_s)


def wait_until(policy: WaitPolicy, remaining_s: float) -> float:
    """The pause towards a moment `remaining_s` from now: within [floor_s, cap_s]."""
    remaining = policy.floor_s if math.isnan(remaining_s) else remaining_s
    return min(max(remaining, policy.floor_s), max(0.0, policy.cap_s))


def _ceiling(attempt: int, base_s: float, cap_s: float, factor: float) -> float:
    cap = max(0.0, cap_s)
    base = max(0.0, base_s)
    steps = min(max(0, attempt - 1), _MAX_DOUBLINGS)
    return min(cap, base * factor**steps)


def _fraction(value: float) -> float:
    """`rand()`'s value clamped to [0, 1] (NaN: 0)."""
    return 0.0 if math.isnan(value) else min(1.0, max(0.0, value))


def backoff_ceiling(attempt: int, base_s: float, cap_s: float) -> float:
    """`min(cap, base * 2**(attempt-1))`: the upper end of attempt `attempt`'s delay."""
    return _ceiling(attempt, base_s, cap_s, 2.0)


def full_jitter(attempt: int, base_s: float, cap_s: float, rand: Callable[[], float]) -> float:
    """A delay drawn uniformly from [0, min(cap, base * 2**(attempt-1))].

    Always within [0, max(cap, 0)], whatever `attempt` (1 is the first retry) and whatever
    `rand` returns (values outside [0, 1] or NaN are clamped).
    """
    return next_delay(WaitPolicy(base_s, cap_s, jitter=True), attempt, rand)


def retry_after_delay(retry_after: float | None, cap_s: float) -> float | None:
    """ONTAP's `Retry-After` (seconds) clamped to [0, cap]; None when there is none."""
    if retry_after is None or math.isnan(retry_after):
        return None
    return min(max(0.0, cap_s), max(0.0, retry_after))


class RetryBudget:
    """A pure counter of retries left: one per run, one per cluster.

    A budget stops retry storms: when many targets fail at once, only `limit` retries
    are spent in total, and the rest end `exhausted`.
    """

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError("a retry budget cannot be negative")
        self.limit = limit
        self.spent = 0

    @property
    def remaining(self) -> int:
        """Retries still allowed."""
        return self.limit - self.spent

    def try_spend(self) -> bool:
        """Spend one retry if any is left; True when it was spent."""
        if self.spent >= self.limit:
            return False
        self.spent += 1
        return True

    def __repr__(self) -> str:
        return f"RetryBudget(limit={self.limit}, spent={self.spent})"


def try_spend_all(budgets: Iterable[RetryBudget]) -> bool:
    """Spend one retry from every budget, or from none when any is empty."""
    chosen = list(budgets)
    if any(budget.remaining <= 0 for budget in chosen):
        return False
    for budget in chosen:
        budget.try_spend()
    return True
