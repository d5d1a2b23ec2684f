"""Batched read-back: one filtered GET per cluster for every target finished lately.

After a rekey job succeeds, verification reads the configuration (key id, health) and
the SVM's key store. Done one target at a time that is two GETs per target; here the
callers of one cluster share them:

    async with ReadBackBatcher(client) as batcher:      # one per cluster, for the run
        result = await batcher.read(config_uuid)         # a ReadBack, or raises OntapError

Everything asked for since the last batch goes into one collection GET per provider
(`/api/security/aws-kms?uuid=a|b|...` with the health fields and `key_id`) and, when a
caller asks for it (`key_store=True`), one key-store GET for those SVMs (`svm.name=x|y|...`;
every key store when a cluster-scoped configuration is among them). A batch leaves
`linger_s` after the first request of a quiet period (so targets finishing together share
it), and at most once every `interval_s` per cluster.

While the cluster is `busy` (a callable: other targets of the cluster are still running
and will ask soon), a batch waits up to `busy_wait_s` after its first request, so a
cluster's read-backs share one batch instead of one per round of jobs; `wake()` tells the
batcher the cluster went quiet (its last running target now waits here), and the batch
leaves after `linger_s`. A batch of `max_batch` configurations leaves at once.

`in_flight` (a callable: the tokens of the cluster's rekeys in flight, i.e. targets that
hold their slots and are not waiting here) makes a batch wait, up to `in_flight_wait_s`
after its first request, for the rekeys that were in flight when it opened: their jobs
end soon and their read-backs join it, so one round of a cluster's jobs shares one GET.
Rekeys started later are not waited for, so a read-back waits at most about one job
(and never more than `in_flight_wait_s`). `wake()` tells the batcher one of them ended.

Each caller gets its own record or its own error: a configuration missing from the answer
is that caller's `OntapError` (404, code 4, as `GET aws-kms/{uuid}` would say); an error
of the batch (a timeout, a 503, a malformed answer) is every caller's error in that batch,
and a caller that asks again joins the next batch.

A caller waits on an event, never on a concurrency slot: call `read` outside the
per-cluster and global limiters. The batch's GETs take no slot either (the pool keeps
spare connections for read-backs and settles). A cancelled caller just stops waiting;
the batch it was in still completes for the others.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence, Set
from dataclasses import dataclass, field
from types import TracebackType

import anyio
from anyio.abc import TaskGroup

from orchestrator.core.backoff import WAITS, Purpose
from orchestrator.core.errors import ErrorKind, OntapError
from orchestrator.core.providers import Provider
from orchestrator.core.targets import CLUSTER_SCOPE
from orchestrator.ontap.client import NOT_FOUND_CODE, OntapClient
from orchestrator.ontap.models import KeyManagerConfig, KeyStore

DEFAULT_INTERVAL_S = WAITS[Purpose.READ_BACK_BATCH].base_s  # one batch per cluster per second
DEFAULT_LINGER_S = 0.05  # targets whose jobs end together share the batch
DEFAULT_MAX_BATCH = 100  # uuids per GET: 100 x 37 characters keeps the URL under 4 KB
DEFAULT_BUSY_WAIT_S = WAITS[
    Purpose.READ_BACK_BATCH
].within_s  # 120 s: the longest a read-back waits for the rest of a busy cluster:
# a cluster whose targets all finish within it is read back once (at 40 SVMs, per-cluster 4
# and 2 s jobs the cluster is busy ~20 s); longer runs read back every 2 minutes
DEFAULT_IN_FLIGHT_WAIT_S = 5.0  # the longest a read-back waits for the cluster's rekeys in
# flight when its batch opened (about one job): what a failure budget's verdict may lag
BATCHED_PROVIDERS = frozenset({Provider.AWS})  # collections the batch can read by uuid


@dataclass(frozen=True)
class ReadBack:
    """A configuration as read back, and its SVM's key store (None: the cluster has none,
    or it was not asked for)."""

    config: KeyManagerConfig
    key_store: KeyStore | None


@dataclass(eq=False)  # identity: two callers may wait for the same uuid
class _Waiter:
    uuid: str
    provider: Provider
    key_store: bool
    done: anyio.Event = field(default_factory=anyio.Event)
    result: ReadBack | None = None
    error: BaseException | None = None

    def resolve(self, result: ReadBack | None, error: BaseException | None) -> None:
        self.result, self.error = result, error
        self.done.set()


class ReadBackBatcher:
    """Coalesces the read-backs of one cluster; an async context manager (its flusher task)."""

    def __init__(
        self,
        client: OntapClient,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        linger_s: float = DEFAULT_LINGER_S,
        max_batch: int = DEFAULT_MAX_BATCH,
        busy: Callable[[], bool] | None = None,
        busy_wait_s: float = DEFAULT_BUSY_WAIT_S,
        in_flight: Callable[[], Set[object]] | None = None,
        in_flight_wait_s: float = DEFAULT_IN_FLIGHT_WAIT_S,
    ) -> None:
        if min(interval_s, linger_s, busy_wait_s, in_flight_wait_s) < 0 or max_batch < 1:
            raise ValueError(
                "interval_s, linger_s, busy_wait_s, in_flight_wait_s must be >= 0, max_batch >= 1"
            )
        self.client = client
        self.interval_s = interval_s
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.busy = busy
        self.busy_wait_s = busy_wait_s
        self.in_flight = in_flight
        self.in_flight_wait_s = in_flight_wait_s
        self.batches = 0  # batches sent so far (for tests and benchmarks)
        self.one_by_one = False  # the cluster refused the health fields on the collection
        self._pending: list[_Waiter] = []
        self._first_pending_at = 0.0
        self._awaited: set[object] = set()  # rekeys in flight when the pending batch opened
        self._last_batch_at = -math.inf
        self._wake = anyio.Event()
        self._sleeping_until: float | None = None  # when the flusher looks again, if it waits
        self._group: TaskGroup | None = None  # where the flusher runs (`start_in`)
        self._own_group: TaskGroup | None = None  # ours, under `async with`
        self._stopped = anyio.CancelScope()  # the flusher's: cancelled by `close`

    async def __aenter__(self) -> ReadBackBatcher:
        group = anyio.create_task_group()
        await group.__aenter__()
        self._own_group = group
        self.start_in(group)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._own_group is not None
        self.close()
        return await self._own_group.__aexit__(exc_type, exc, tb)

    def start_in(self, group: TaskGroup) -> None:
        """Run the flusher in `group` (a pool's one group for all its clusters' batchers:
        a group per cluster, entered one inside the other, would nest a cancel scope per
        cluster, and anyio walks that chain at every checkpoint of every task inside it)."""
        self._group = group
        group.start_soon(self._flusher)

    def close(self) -> None:
        """Stop the flusher; a read-back still waiting ends with an error."""
        self._stopped.cancel()
        closed = OntapError(
            cluster=self.client.cluster,
            operation="read_back",
            kind=ErrorKind.CONNECT,
            message="read-back batcher closed",
        )
        for waiter in self._take(len(self._pending)):
            waiter.resolve(None, closed)

    def wake(self) -> None:
        """The cluster went quiet (see `busy`) or a rekey in flight ended (`in_flight`):
        a waiting batch looks again whether it is due."""
        if self._pending and self._due_sooner():
            self._wake.set()

    def _due_sooner(self) -> bool:
        """Whether the flusher must look again: it waits for a batch to open or is busy
        (`_sleeping_until` None), or the pending batch is now due before it planned to
        look (a wake-up that changes nothing costs the flusher a trip through the loop
        and a new timeout per target)."""
        return self._sleeping_until is None or self._due() < self._sleeping_until

    async def read(
        self, config_uuid: str, *, provider: Provider = Provider.AWS, key_store: bool = True
    ) -> ReadBack:
        """This configuration (and with `key_store` its SVM's key store), from the next
        batch of its provider's collection; raises OntapError."""
        if self._group is None:
            raise RuntimeError("use `async with ReadBackBatcher(...)` before read()")
        if provider not in BATCHED_PROVIDERS:
            raise ValueError(f"no batched read-back for {provider.value} configurations")
        waiter = _Waiter(config_uuid, provider, key_store)
        if not self._pending:
            self._open_batch()
        self._pending.append(waiter)
        if self._due_sooner():
            self._wake.set()
        try:
            await waiter.done.wait()
        finally:
            if not waiter.done.is_set() and waiter in self._pending:
                self._pending.remove(waiter)  # cancelled before its batch left
        if waiter.error is not None:
            raise _own(waiter.error)
        assert waiter.result is not None
        return waiter.result

    # -- the flusher ---------------------------------------------------------------------

    async def _flusher(self) -> None:
        with self._stopped:
            await self._flush_while_open()

    async def _flush_while_open(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            await self._until_due()
            if not self._pending:
                continue
            batch = self._take(self.max_batch)
            if self._pending:  # more than one batch's worth: the rest goes next time
                self._open_batch()
                self._wake.set()
            if batch:
                self._last_batch_at = anyio.current_time()
                self.batches += 1
                await self._send(batch)

    async def _until_due(self) -> None:
        """Wait until the pending batch is due; every `read` and `wake` looks again (a
        cluster that went quiet or a full batch makes it due sooner)."""
        while self._pending:
            due = self._due()
            delay = due - anyio.current_time()
            if delay <= 0:
                return
            self._sleeping_until = due
            try:
                with anyio.move_on_after(delay):
                    await self._wake.wait()
            finally:
                self._sleeping_until = None
            self._wake = anyio.Event()

    def _open_batch(self) -> None:
        """A new pending batch: from now on it waits for the rekeys in flight."""
        self._first_pending_at = anyio.current_time()
        self._awaited = set(self.in_flight()) if self.in_flight is not None else set()

    def _due(self) -> float:
        """When the pending batch leaves (anyio clock)."""
        soon = max(self._first_pending_at + self.linger_s, self._last_batch_at + self.interval_s)
        if len(self._pending) >= self.max_batch and self._distinct() >= self.max_batch:  # full
            return soon
        due = soon
        if self.busy is not None and self.busy():
            due = max(due, self._first_pending_at + self.busy_wait_s)
        if self._awaited and self.in_flight is not None:
            self._awaited &= self.in_flight()  # those that ended are no longer awaited
            if self._awaited:
                due = max(due, self._first_pending_at + self.in_flight_wait_s)
        return due

    def _distinct(self) -> int:
        return len({w.uuid for w in self._pending})

    def _take(self, count: int) -> list[_Waiter]:
        """The oldest waiters of the oldest waiter's provider, for up to `count` distinct
        uuids (duplicates ride along)."""
        uuids: set[str] = set()
        taken: list[_Waiter] = []
        rest: list[_Waiter] = []
        provider = self._pending[0].provider if self._pending else None
        for waiter in self._pending:
            if waiter.provider is not provider:
                rest.append(waiter)
            elif waiter.uuid in uuids or len(uuids) < count:
                uuids.add(waiter.uuid)
                taken.append(waiter)
            else:
                rest.append(waiter)
        self._pending = rest
        return taken

    async def _send(self, batch: list[_Waiter]) -> None:
        """The two GETs of one batch; every waiter resolved, whatever happens."""
        uuids = list(dict.fromkeys(w.uuid for w in batch))
        try:
            results = await self._fetch(uuids, key_stores=any(w.key_store for w in batch))
        except Exception as exc:  # each caller re-raises it as its own
            for waiter in batch:
                waiter.resolve(None, exc)
            return
        for waiter in batch:
            found = results.get(waiter.uuid)
            if isinstance(found, OntapError):
                waiter.resolve(None, found)
            else:
                waiter.resolve(found, None if found is not None else self._not_found(waiter.uuid))

    async def _fetch(
        self, uuids: Sequence[str], *, key_stores: bool
    ) -> dict[str, ReadBack | OntapError]:
        """The batch's configurations (AWS: the only batched collection yet), and their key
        stores when any caller asked for them."""
        configs, errors = await self._configs(uuids)
        if not configs:
            return dict(errors)
        found: dict[str, ReadBack | OntapError] = dict(errors)
        if not key_stores:
            return found | {c.uuid: ReadBack(c, None) for c in configs}
        stores = _StoresBySvm(await self.client.list_key_stores(svm=_key_store_filter(configs)))
        return found | {c.uuid: ReadBack(c, stores.of(c.target_svm)) for c in configs}

    async def _configs(
        self, uuids: Sequence[str]
    ) -> tuple[list[KeyManagerConfig], dict[str, OntapError]]:
        """The configurations by one filtered collection GET. A cluster that refuses the
        health fields on the collection (ONTAP answers e.g. 65537915 while a node cannot
        reach AWS) is read one configuration at a time from then on, as before batching:
        each caller then gets its own answer or error."""
        if not self.one_by_one:
            try:
                configs = await self.client.list_aws_kms(health=True, uuids=uuids)
            except OntapError as err:
                if err.kind is not ErrorKind.HTTP or err.status != 400:
                    raise
                self.one_by_one = True
            else:
                wanted = set(uuids)  # a filter ignored is no match
                return [c for c in configs if c.uuid in wanted], {}
        return await self._each(uuids)

    async def _each(
        self, uuids: Sequence[str]
    ) -> tuple[list[KeyManagerConfig], dict[str, OntapError]]:
        configs: list[KeyManagerConfig] = []
        errors: dict[str, OntapError] = {}
        for uuid in uuids:
            try:
                configs.append(await self.client.get_aws_kms(uuid, health=True))
            except OntapError as err:
                errors[uuid] = err
        return configs, errors

    def _not_found(self, uuid: str) -> OntapError:
        return OntapError(
            cluster=self.client.cluster,
            operation="read_back",
            kind=ErrorKind.HTTP,
            message=f"aws-kms configuration {uuid} not found",
            status=404,
            code=NOT_FOUND_CODE,
        )


def _key_store_filter(configs: Sequence[KeyManagerConfig]) -> str | None:
    """`svm.name=a|b|...`, or None (every key store) when the cluster scope is among them:
    its key store has no SVM to filter on."""
    svms = sorted({c.target_svm for c in configs})
    if CLUSTER_SCOPE in svms:
        return None
    return "|".join(svms)


def _store_of(stores: Sequence[KeyStore], svm: str) -> KeyStore | None:
    """The key store of this SVM among `stores`. For `-`, the cluster-scoped one: ONTAP 9.14+
    says `scope: cluster` (and names the admin SVM); before 9.14 it is the one without an SVM."""
    if svm != CLUSTER_SCOPE:
        return next((s for s in stores if s.svm_name == svm and s.scope != "cluster"), None)
    scoped = next((s for s in stores if s.scope == "cluster"), None)
    return scoped or next((s for s in stores if s.svm_name is None), None)


class _StoresBySvm:
    """`_store_of` for every configuration of a batch, the stores looked up by SVM name
    instead of searched once per configuration."""

    def __init__(self, stores: Sequence[KeyStore]) -> None:
        self._stores = stores
        self._by_svm: dict[str | None, KeyStore] = {}
        for store in stores:
            if store.scope != "cluster":
                self._by_svm.setdefault(store.svm_name, store)  # the first one, as a search

    def of(self, svm: str) -> KeyStore | None:
        if svm == CLUSTER_SCOPE:
            return _store_of(self._stores, svm)
        return self._by_svm.get(svm)


def _own(error: BaseException) -> BaseException:
    """Each caller raises its own copy of a shared batch error (tracebacks stay apart)."""
    if not isinstance(error, OntapError):
        return error
    copy = OntapError(
        cluster=error.cluster,
        operation=error.operation,
        kind=error.kind,
        message=error.message,
        status=error.status,
        code=error.code,
        maybe_sent=error.maybe_sent,
        retry_after=error.retry_after,
    )
    copy.__cause__ = error.__cause__
    return copy
