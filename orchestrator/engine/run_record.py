"""The one builder of a new run's `RunRecord`, for `run`, `resume`'s parent and `plan`,
and the scope every run and resume works in (the run lock, the log context).

Every run and plan records the same things: the inventory (path and hash), the effective
options, the selection as given, who ran it, and the clusters whose TLS verification is off
(logged now, flagged in every report from here).
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import anyio
import structlog

from orchestrator.core.inventory import ClusterSpec, Inventory
from orchestrator.core.options import RunOptions
from orchestrator.core.selectors import Selection
from orchestrator.engine.store import RunStore
from orchestrator.ledger.records import RunMode, RunRecord
from orchestrator.observe import events

log = structlog.get_logger()


def new_run_record(
    run_id: str,
    mode: RunMode,
    inventory: Inventory,
    options: RunOptions,
    selection: Selection,
    specs: Iterable[ClusterSpec],
) -> RunRecord:
    """A new run (or plan) `run_id` (`RunStore.new_run_id`) of `specs`, the clusters the
    selection may touch."""
    return RunRecord(
        run_id=run_id,
        mode=mode,
        inventory_path=str(inventory.path),
        inventory_sha256=inventory.sha256,
        options=options.to_json(),
        operator=operator_name(),
        started_at=time.time(),
        reason=options.reason,
        selection=selection.as_record(),
        tls_verify_disabled=tuple(_unverified(specs)),
    )


def _unverified(specs: Iterable[ClusterSpec]) -> list[str]:
    """Clusters with `tls: {verify: false}`: logged now, flagged in the report."""
    names = [spec.name for spec in specs if not spec.tls.verify]
    for name in names:
        log.warning(events.CLUSTER_TLS_VERIFY_DISABLED, cluster=name)
    return names


def operator_name() -> str:
    """`user@host`, as the ledger and the reports name who ran a run."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def log_context(record: RunRecord) -> dict[str, str]:
    """What every log line of a run (or plan) carries: its id, and an emergency's reason."""
    context = {"run_id": record.run_id}
    if record.reason:
        context["reason"] = record.reason
    return context


@asynccontextmanager
async def run_scope(store: RunStore, record: RunRecord) -> AsyncIterator[None]:
    """The ledger's run lock held for `record` and its log context bound, around a run or a
    resume; the lock goes back even when the run is cancelled."""
    await store.acquire(record.run_id)
    try:
        with structlog.contextvars.bound_contextvars(**log_context(record)):
            yield
    finally:
        with anyio.CancelScope(shield=True):
            await store.release()
