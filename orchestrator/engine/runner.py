"""A whole run: discovery, the ledger's rows, waves, the task group, stops and signals.

Every target task catches its own errors and ends in a terminal row (a failing child would
otherwise cancel its siblings). The failure budget, fail-fast and the canary stop the run
by `RunContext.stop()`: targets not yet started end `aborted`, in-flight ones finish.
A first SIGINT/SIGTERM does the same; a second cancels at once, and the ledger keeps the
in-flight rows (intent, job uuid) for `resume`.
"""

from __future__ import annotations

import signal
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import anyio
import structlog
from anyio import CancelScope
from anyio.abc import TaskGroup

from orchestrator.core.backoff import RetryBudget
from orchestrator.core.exitcodes import ExitCode, exit_code
from orchestrator.core.failure_budget import FailureBudget
from orchestrator.core.inventory import ClusterSpec, Inventory, RetryOverride
from orchestrator.core.lifecycle import IN_FLIGHT, Evidence
from orchestrator.core.options import RunOptions
from orchestrator.core.outcomes import is_success
from orchestrator.core.selectors import Selection, cluster_may_match, target_matches
from orchestrator.core.targets import AbortReason, Outcome, TargetKey, TargetState
from orchestrator.engine.context import RunContext
from orchestrator.engine.discovering import (
    ClusterRowsSeen,
    DiscoveryFeed,
    cluster_rows,
    discover_each,
)
from orchestrator.engine.discovery import Discovery, require_selected_targets
from orchestrator.engine.planner import RunPreview, preview
from orchestrator.engine.pool import ClusterPool, TransportFactory
from orchestrator.engine.procedure import drive_target
from orchestrator.engine.recorder import TargetRecorder, row_with
from orchestrator.engine.run_record import new_run_record, run_scope
from orchestrator.engine.scheduling import (
    Feeders,
    Starter,
    cluster_lanes,
    cut_waves,
    order_rows,
    start_fed,
)
from orchestrator.engine.settle import EARLIER_JOBS, RECORDED_JOBS_HORIZON_S, with_recorded_jobs
from orchestrator.engine.store import RunStore
from orchestrator.errors import RunInterruptedError, StateError
from orchestrator.ledger.records import RunMode, RunRecord, RunStatus, TargetRow
from orchestrator.observe import events
from orchestrator.observe.progress import ProgressView

log = structlog.get_logger()

ABORTING = frozenset(
    {
        AbortReason.FAILURE_BUDGET,
        AbortReason.FAIL_FAST,
        AbortReason.DEADLINE,
        AbortReason.CANARY_FAILED,
    }
)


class NullObserver:
    """A ProgressView that shows nothing (tests, benchmarks)."""

    def start(self, total: int, clusters: int, wave_sizes: Sequence[int]) -> None: ...
    def targets_added(self, count: int) -> None: ...
    def wave_started(self, index: int, size: int) -> None: ...
    def target_finished(self, outcome: str) -> None: ...
    def retry_scheduled(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class RunRequest:
    inventory: Inventory
    selection: Selection
    options: RunOptions
    mode: RunMode = RunMode.RUN


@dataclass(frozen=True)
class RunResult:
    run: RunRecord
    rows: list[TargetRow]  # every target's final row, by key; [] unless `Wiring.keep_rows`
    exit_code: ExitCode
    stop_reason: AbortReason | None


@dataclass
class Wiring:
    """The edges a run talks to; tests swap the transport (and the store)."""

    store: RunStore  # the ledger, through the engine's port (ledger.async_ledger.AsyncLedger)
    transport_factory: TransportFactory | None = None
    observer: ProgressView | None = None
    handle_signals: bool = True
    confirm: Callable[[RunPreview], bool] | None = None  # after discovery, before any POST
    # The final rows in `RunResult.rows` (tests, benchmarks). The commands pass False: only
    # each finished target's outcome is kept (the summary, the exit code), its row is in
    # the ledger, which their reports read: 10,000 rows held to the end were ~25 MB.
    keep_rows: bool = True
    # An overlapped run's plan summary, a cluster at a time (`run --yes` prints each
    # cluster's line as it is discovered: there is no moment before the first POST when
    # every cluster is known).
    cluster_seen: ClusterRowsSeen | None = None


async def execute_run(request: RunRequest, wiring: Wiring) -> RunResult | None:
    """Discover, record and rotate the selected targets; None when not confirmed.

    Raises StateError (exit 2, nothing contacted) while an unfinished run of the ledger has
    targets in flight among this selection, and RunInterruptedError (exit 1) when an
    unexpected error stops the rotation."""
    store = wiring.store
    record = _new_record(request, await store.new_run_id())
    async with run_scope(store, record):
        await refuse_unfinished(store, request)
        async with ClusterPool(
            selected_specs(request), request.options, wiring.transport_factory
        ) as pool:
            if request.options.overlap_discovery and pool_lanes(pool, request.options):
                return await _overlapped(record, request, pool, wiring)
            if request.options.overlap_discovery:  # every cluster would start at once: the
                # last one discovered sets the end either way (measured at 250 x 40: the
                # same wall, +0.25 ms of CPU per target), so the plan comes first
                options = replace(request.options, overlap_discovery=False)
                record = replace(record, options=options.to_json())
            rows = await discover_rows(record.run_id, request, pool)
            rows = await _with_earlier_runs_jobs(rows, store)
            shown = preview(rows, pool, request.options)
            if wiring.confirm and not await anyio.to_thread.run_sync(wiring.confirm, shown):
                return None
            ordered = shown.pending  # the order `rotate` starts them in (the same call)
            del shown  # and its lists of the rows: `rotate` lets each row go once started
            await store.create_run(record)
            await store.add_targets(rows)
            return await rotate(
                record, rows, pool, wiring, request.inventory.retry, ordered=ordered
            )


async def resume_run(record: RunRecord, request: RunRequest, wiring: Wiring) -> RunResult:
    """Continue a run from its ledger rows: settle in-flight targets, redo aborted ones."""
    store = wiring.store
    async with run_scope(store, record):
        await store.set_run_status(record.run_id, RunStatus.ACTIVE)
        rows = [_reopen(row) for row in await store.targets(record.run_id)]
        clusters = {row.key.cluster for row in rows if row.state is not TargetState.DONE}
        missing = _undiscovered(record, request, {row.key.cluster for row in rows})
        specs = [
            spec
            for spec in request.inventory.clusters
            if spec.name in clusters or spec.name in missing
        ]
        if request.options.overlap_discovery:
            log.info(events.RUN_RESUME_DISCOVERY, clusters=len(missing))
        async with ClusterPool(specs, request.options, wiring.transport_factory) as pool:
            if missing:
                rows += await _discover_missing(record, request, pool, store, missing)
            return await rotate(record, rows, pool, wiring, request.inventory.retry, waves="100%")


def _undiscovered(record: RunRecord, request: RunRequest, recorded: set[str]) -> list[str]:
    """The clusters an overlapped run selected that have no rows: a kill came before they
    were discovered (or they have no selected target, and are asked again)."""
    if not request.options.overlap_discovery:
        return []  # every row was committed in one transaction before the first POST
    selection = Selection.of_clusters(record.selection)
    return [
        spec.name
        for spec in request.inventory.clusters
        if spec.name not in recorded and cluster_may_match(selection, spec)
    ]


async def _discover_missing(
    record: RunRecord, request: RunRequest, pool: ClusterPool, store: RunStore, names: list[str]
) -> list[TargetRow]:
    """Discover `names` and commit their rows (each cluster's in one transaction)."""
    feed = DiscoveryFeed(
        record,
        pool,
        store,
        Selection.of_clusters(record.selection),
        request.options,
        recorded=await _earlier_runs_jobs(store),
        outcomes={},
        kept={},
        created=True,
    )
    await feed.run(lambda _name, _pending, under_way: under_way(), names)
    assert feed.kept is not None
    return list(feed.kept.values())


async def refuse_unfinished(store: RunStore, request: RunRequest) -> None:
    """Refuse a new run while an unfinished run has targets in flight among its selection:
    their rekeys may be running, and only `resume` settles them before any new POST."""
    specs = {spec.name: spec for spec in request.inventory.clusters}
    for run_id, keys in (await store.unfinished_in_flight()).items():
        mine = [
            key
            for key in keys
            if key.cluster in specs
            and target_matches(request.selection, specs[key.cluster], key.svm)
        ]
        if mine:
            raise StateError(
                f"run {run_id} is unfinished with {len(mine)} target(s) in flight among this "
                f"selection (e.g. {mine[0]}): continue it first with "
                f"`ontap-rekey resume {run_id} --state {store.path}`"
            )


async def _with_earlier_runs_jobs(rows: list[TargetRow], store: RunStore) -> list[TargetRow]:
    """Each target's rekey jobs recorded by recent earlier runs, among its earlier jobs:
    settling never takes one of them for this run's (`settle.with_recorded_jobs`)."""
    recorded = await _earlier_runs_jobs(store)
    if not recorded:  # a fresh ledger, or no run within the horizon: every row as it is
        return rows
    # a row without recorded jobs is itself (`with_recorded_jobs(row, ())` is `row`)
    return [
        with_recorded_jobs(row, recorded[row.key]) if row.key in recorded else row for row in rows
    ]


async def _earlier_runs_jobs(store: RunStore) -> dict[TargetKey, set[str]]:
    return await store.recorded_jobs(time.time() - RECORDED_JOBS_HORIZON_S, EARLIER_JOBS)


def _reopen(row: TargetRow) -> TargetRow:
    """`aborted` targets never started: resume starts them again."""
    if row.state is TargetState.DONE and row.outcome == Outcome.ABORTED.value:
        return replace(row, state=TargetState.PENDING, outcome=None, reason=None, finished_at=None)
    return row


async def discover_rows(run_id: str, request: RunRequest, pool: ClusterPool) -> list[TargetRow]:
    """Every selected target, PENDING or already decided by discovery.

    A cluster's rows are built the moment it is discovered, and what it answered (its
    configurations, key stores, health) goes then: every cluster's answers held until the
    last one was in were ~100 MB of the peak at 100,000 targets."""
    by_cluster: dict[str, list[TargetRow]] = {}
    selection, options = request.selection, request.options

    async def rows_of(name: str, discovery: Discovery, _under_way: object) -> None:
        by_cluster[name] = cluster_rows(run_id, pool, name, discovery, selection, options)

    await discover_each(pool, options, rows_of)
    rows = [row for name in pool.clusters for row in by_cluster[name]]
    require_selected_targets(request.selection, by_cluster, rows)
    return rows


async def discover_all(pool: ClusterPool, options: RunOptions) -> dict[str, Discovery]:
    """Discover every cluster of the pool concurrently, `--concurrency` at a time."""
    found: dict[str, Discovery] = {}

    async def take(name: str, discovery: Discovery, _under_way: object) -> None:
        found[name] = discovery

    await discover_each(pool, options, take)
    return {name: found[name] for name in pool.clusters}


async def rotate(
    record: RunRecord,
    rows: list[TargetRow],
    pool: ClusterPool,
    wiring: Wiring,
    overrides: Mapping[str, RetryOverride],
    *,
    waves: str | None = None,
    ordered: list[TargetRow] | None = None,
) -> RunResult:
    """Run every non-terminal row to its end, wave by wave; close the run in the ledger.

    `rows` is taken over (emptied): from here a pending row lives until its target has
    started, and a finished target leaves its outcome only (and its final row with
    `wiring.keep_rows`); the ledger has every row. `ordered`: `rows`' pending ones already
    in `order_rows`' order (the preview's, ~0.15 s of sorting at 100,000 targets), taken
    over (emptied) too."""
    options = RunOptions.from_json(record.options)
    pending = ordered
    if pending is None:
        pending = order_rows(
            [r for r in rows if r.state is not TargetState.DONE], emergency=options.emergency
        )
    plan = cut_waves(pending, waves or options.waves)
    outcomes = {row.key: row.outcome for row in rows}
    kept = {row.key: row for row in rows} if wiring.keep_rows else None
    log.info(
        events.RUN_STARTED,
        mode=record.mode.value,
        targets=len(rows),
        pending=len(pending),
        clusters=len(pool.clusters),
        waves=[len(w) for w in plan],
    )
    await _load_calibrations(pool, wiring.store)  # before the display starts: nothing to stop
    _load_witnesses(pool, rows)
    (wiring.observer or NullObserver()).start(
        len(pending), len(pool.clusters), [len(w) for w in plan]
    )
    pending.clear()  # `ordered` too (the caller's reference): each row goes once started
    del pending
    rows.clear()

    async def body(rotation: _Rotation) -> None:
        await rotation.waves(plan, wiring.handle_signals)

    result = await _rotating(_Tally(record, options, outcomes, kept), pool, wiring, overrides, body)
    assert result is not None  # the run was recorded before `rotate`
    return result


async def _overlapped(
    record: RunRecord, request: RunRequest, pool: ClusterPool, wiring: Wiring
) -> RunResult:
    """A run whose clusters' targets start as each cluster is discovered
    (`core.options.overlaps_discovery`, `engine.discovering`)."""
    store, options = wiring.store, request.options
    kept: dict[TargetKey, TargetRow] | None = {} if wiring.keep_rows else None
    tally = _Tally(record, options, {}, kept)
    feed = DiscoveryFeed(
        record,
        pool,
        store,
        request.selection,
        options,
        await _earlier_runs_jobs(store),
        tally.outcomes,
        kept,
        seen=wiring.cluster_seen,
    )
    tally.recorded = lambda: feed.created
    log.info(events.RUN_STARTED, mode=record.mode.value, clusters=len(pool.clusters), overlap=True)
    await _load_calibrations(pool, store)
    (wiring.observer or NullObserver()).start(0, len(pool.clusters), [])

    async def body(rotation: _Rotation) -> None:
        await rotation.overlapped(feed, wiring.handle_signals)

    result = await _rotating(tally, pool, wiring, request.inventory.retry, body)
    if result is None:  # no cluster had a selected target: nothing recorded, nothing sent
        require_selected_targets(request.selection, pool.clusters, [])
        raise AssertionError("a run without targets passed require_selected_targets")
    return result


@dataclass
class _Tally:
    """A rotation's run and what it ends with: each target's outcome (its final row when
    kept); `recorded` says whether the run is in the ledger (an overlapped run is
    recorded with its first rows)."""

    record: RunRecord
    options: RunOptions
    outcomes: dict[TargetKey, str | None]
    kept: dict[TargetKey, TargetRow] | None
    recorded: Callable[[], bool] = lambda: True


async def _rotating(
    tally: _Tally,
    pool: ClusterPool,
    wiring: Wiring,
    overrides: Mapping[str, RetryOverride],
    body: Callable[[_Rotation], Awaitable[None]],
) -> RunResult | None:
    """Run `body` over the rotation's moving parts; close the run in the ledger (None:
    the run was never recorded)."""
    record, store, observer = tally.record, wiring.store, wiring.observer or NullObserver()
    interrupted = False
    crash: Exception | None = None
    run = _run_context_for(record, tally.options, store, overrides)
    options = tally.options
    budget = FailureBudget(options.max_fail_percent, options.min_fail_sample, options.fail_fast)
    try:
        rotation = _Rotation(run, pool, tally.outcomes, tally.kept, budget, observer)
        run.on_outcome = rotation.account
        run.on_job_success = rotation.account_job_success
        run.on_retry = observer.retry_scheduled
        await body(rotation)
    except anyio.get_cancelled_exc_class():
        interrupted = True
        raise
    except Exception as exc:
        interrupted, crash = True, exc
    finally:
        observer.stop()
        interrupted = interrupted or run.stop_reason is AbortReason.INTERRUPT
        # Shielded: a cancelled run (a second signal) is still closed `interrupted`.
        with anyio.CancelScope(shield=True):
            await store.aclose()
            result = None
            if tally.recorded():
                result = await _close_run(record, run, tally, store, interrupted)
    if crash is not None:
        if result is None:  # nothing recorded, nothing sent: the error as it is
            raise crash
        raise _crashed(record, store, crash) from crash
    return result


def pool_lanes(pool: ClusterPool, options: RunOptions) -> int | None:
    """How many of the pool's clusters are rotated at once (`cluster_lanes`); None: all."""
    limits = [context.limiter.total_tokens for context in pool.clusters.values()]
    return cluster_lanes(limits, max(1, options.concurrency))


def _crashed(record: RunRecord, store: RunStore, exc: Exception) -> RunInterruptedError:
    """Log the traceback; one line for the operator with the run id and `resume`."""
    log.error(events.RUN_INTERRUPTED, cause="internal_error", exc_info=exc)
    while isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]  # the task group's wrapper says nothing: name the cause
    return RunInterruptedError(
        f"run {record.run_id} interrupted by an internal error "
        f"({type(exc).__name__}: {exc}); the ledger is consistent: continue it with "
        f"`ontap-rekey resume {record.run_id} --state {store.path}`"
    )


def _load_witnesses(pool: ClusterPool, rows: list[TargetRow]) -> None:
    """The jobs an earlier process of this run saw ended, with when: after a crash they
    witness how long the cluster keeps job records (core.settling.witnessed_lifetime)."""
    for row in rows:
        if not row.evidence:  # a fresh run's rows: no job seen (`Evidence.from_json({})`)
            continue
        evidence = Evidence.from_json(row.evidence)
        if evidence.job_uuid and evidence.ended_seen_at and row.key.cluster in pool.clusters:
            pool[row.key.cluster].saw_ended(evidence.job_uuid, evidence.ended_seen_at)


async def _load_calibrations(pool: ClusterPool, store: RunStore) -> None:
    """What earlier runs learnt about each cluster's rekey jobs (core.settling)."""
    known = await store.calibrations()
    for name, context in pool.clusters.items():
        context.calibrations.update(known.get(name, {}))


def _run_context_for(
    record: RunRecord,
    options: RunOptions,
    store: RunStore,
    overrides: Mapping[str, RetryOverride],
) -> RunContext:
    # The deadline counts from the start of this rotation: a `resume` gets a fresh window
    # of the same length (with the original one, targets aborted at the deadline could
    # never be resumed).
    deadline = None
    if options.deadline_s is not None:
        deadline = anyio.current_time() + options.deadline_s
    return RunContext(
        run_id=record.run_id,
        options=options,
        ledger=store,
        limiter=anyio.CapacityLimiter(max(1, options.concurrency)),
        budget=RetryBudget(options.run_retry_budget),
        overrides=overrides,
        deadline=deadline,
    )


@dataclass
class _Rotation:
    """The moving parts of one rotation: the targets' outcomes (final rows when kept) and
    the budget."""

    run: RunContext
    pool: ClusterPool
    outcomes: dict[TargetKey, str | None]
    kept: dict[TargetKey, TargetRow] | None
    budget: FailureBudget
    observer: ProgressView

    async def waves(self, plan: list[list[TargetRow]], handle_signals: bool) -> None:
        async with anyio.create_task_group() as outer:
            if handle_signals:
                outer.start_soon(_watch_signals, self.run, outer.cancel_scope)
            for index in range(1, len(plan) + 1):
                wave, plan[index - 1] = plan[index - 1], []
                canary = [row.key for row in wave] if index == 1 and len(plan) > 1 else None
                await self.wave(index, wave)
                if canary is not None and self.canary_failed(canary):
                    self.run.stop(AbortReason.CANARY_FAILED)
            outer.cancel_scope.cancel()

    async def wave(self, index: int, wave: list[TargetRow]) -> None:
        """Start the wave's targets (`wave` is emptied: each row goes once its target has
        started); rows a previous process left in flight first, and the others only once
        every in-flight one holds its slots again (their jobs may be running: they count
        against the limits before any new POST)."""
        log.info(events.WAVE_STARTED, wave=index, size=len(wave))
        self.observer.wave_started(index - 1, len(wave))  # the display counts from 0
        in_flight = [row for row in wave if row.state in IN_FLIGHT]
        fresh = [row for row in wave if row.state not in IN_FLIGHT]
        wave.clear()
        async with anyio.create_task_group() as group:
            settled = [anyio.Event() for _ in in_flight]
            for row, event in zip(in_flight, settled, strict=True):
                group.start_soon(self.target, replace(row, wave=index), event.set)
            del in_flight
            for event in settled:
                await event.wait()
            lanes = None if self.run.options.emergency else int(self.run.limiter.total_tokens)
            start = self._starter(group, index)
            start_fed(group, fresh, self.pool.clusters, start, concurrency=lanes)
            fresh.clear()  # the feeders' queues hold them until each one starts
        log.info(events.WAVE_FINISHED, wave=index)

    async def overlapped(self, discovery: DiscoveryFeed, handle_signals: bool) -> None:
        """One wave whose clusters' targets start as discovery finds them; the clusters
        take the lanes (`cluster_lanes`) in the order they answer."""
        async with anyio.create_task_group() as outer:
            if handle_signals:
                outer.start_soon(_watch_signals, self.run, outer.cancel_scope)
            log.info(events.WAVE_STARTED, wave=1)
            self.observer.wave_started(0, 0)
            lanes = pool_lanes(self.pool, self.run.options)
            async with anyio.create_task_group() as group:
                feeders = Feeders(group, self.pool.clusters, self._starter(group, 1), lanes)

                def feed(name: str, pending: deque[TargetRow], on_lane: Callable[[], None]) -> None:
                    self.observer.targets_added(len(pending))
                    feeders.add(name, pending, on_lane)

                await discovery.run(feed, ahead=lanes)
                log.info(
                    events.RUN_DISCOVERED,
                    targets=discovery.targets,
                    pending=discovery.pending,
                    clusters=len(self.pool.clusters),
                )
            log.info(events.WAVE_FINISHED, wave=1)
            outer.cancel_scope.cancel()

    def _starter(self, group: TaskGroup, index: int) -> Starter:
        def start(row: TargetRow, began: Callable[[], None]) -> None:
            group.start_soon(self._begin, row_with(row, wave=index), began)

        return start

    async def _begin(self, row: TargetRow, began: Callable[[], None]) -> None:
        began()
        await self.target(row, None)

    def canary_failed(self, wave: list[TargetKey]) -> bool:
        return not all(is_success(self.outcomes[key]) for key in wave)

    async def target(self, row: TargetRow, on_slots: Callable[[], None] | None) -> None:
        recorder = TargetRecorder(row, self.run.ledger)
        # `bound_contextvars` without its context manager's generator (per target)
        tokens = structlog.contextvars.bind_contextvars(
            cluster=row.key.cluster, svm=row.key.svm, wave=row.wave
        )
        try:
            await drive_target(self.run, self.pool[row.key.cluster], recorder, on_slots=on_slots)
        finally:
            self.outcomes[row.key] = recorder.row.outcome
            if self.kept is not None:
                self.kept[row.key] = recorder.row
            structlog.contextvars.reset_contextvars(**tokens)
        self.observer.target_finished(recorder.row.outcome or "aborted")

    def account_job_success(self) -> None:
        """A success sampled when its job ended (it may complete the minimum sample)."""
        self.budget.record_job_success()
        self._judge()

    def account(self, outcome: Outcome, sampled: bool = False) -> None:
        """Spend the failure budget; stop the run when it is gone or fail-fast trips."""
        self.budget.record(outcome, sampled=sampled)
        self._judge()

    def _judge(self) -> None:
        if self.budget.fail_fast_tripped:
            self.run.stop(AbortReason.FAIL_FAST)
        elif self.budget.exceeded:
            self.run.stop(AbortReason.FAILURE_BUDGET)


async def _watch_signals(run: RunContext, scope: CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            if run.stop_reason is AbortReason.INTERRUPT:
                log.warning(events.RUN_INTERRUPTED, signal=signum, action="cancel")
                scope.cancel()
                return
            log.warning(events.RUN_INTERRUPTED, signal=signum, action="drain")
            run.stop(AbortReason.INTERRUPT)


async def _close_run(
    record: RunRecord, run: RunContext, tally: _Tally, store: RunStore, interrupted: bool
) -> RunResult:
    outcomes, kept = tally.outcomes, tally.kept
    _forgive_idle_stop(run, outcomes)
    status = _status(run.stop_reason, interrupted)
    await store.set_run_status(record.run_id, status, time.time())
    code = exit_code(record.mode, status, outcomes.values())
    counts = Counter(Outcome(outcome) for outcome in outcomes.values() if outcome is not None)
    totals = {o.value: counts[o] for o in Outcome}
    aborted = status is RunStatus.ABORTED
    (log.warning if aborted else log.info)(
        events.RUN_ABORTED if aborted else events.RUN_FINISHED,
        status=status.value,
        stop_reason=run.stop_reason,
        totals=totals,
        exit_code=int(code),
    )
    # The closed run as the ledger has it (with `ended_at`): the written reports must be
    # the ones `ontap-rekey report RUN_ID` renders from the ledger later.
    rows = sorted(kept.values(), key=lambda row: row.key) if kept is not None else []
    return RunResult(await store.get_run(record.run_id), rows, code, run.stop_reason)


def _forgive_idle_stop(run: RunContext, outcomes: dict[TargetKey, str | None]) -> None:
    """A stop that aborted no target changed nothing: a run whose every target finished
    (e.g. the budget tripped by the last one to finish) is `finished`, never `aborted`."""
    if run.stop_reason in ABORTING and Outcome.ABORTED.value not in outcomes.values():
        run.stop_reason = None


def _status(stop: AbortReason | None, interrupted: bool) -> RunStatus:
    if interrupted or stop is AbortReason.INTERRUPT:
        return RunStatus.INTERRUPTED
    if stop in ABORTING:
        return RunStatus.ABORTED
    return RunStatus.FINISHED


def _new_record(request: RunRequest, run_id: str) -> RunRecord:
    specs = selected_specs(request)
    return new_run_record(
        run_id, request.mode, request.inventory, request.options, request.selection, specs
    )


def selected_specs(request: RunRequest) -> list[ClusterSpec]:
    return [
        spec for spec in request.inventory.clusters if cluster_may_match(request.selection, spec)
    ]
