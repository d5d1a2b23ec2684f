"""A cluster pool's cancel scopes do not grow with its clusters (engine/pool.py)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from anyio._backends import _asyncio as anyio_asyncio

from orchestrator.core.inventory import BasicAuth, ClusterSpec, TlsSettings
from orchestrator.core.options import RunOptions
from orchestrator.engine.pool import ClusterPool

PASSWORD_ENV = "ONTAP_TEST_POOL_PASSWORD"


def _spec(index: int) -> ClusterSpec:
    return ClusterSpec(
        name=f"c{index:03}",
        base_url=f"http://127.0.0.{index % 250 + 1}:1",
        auth=BasicAuth("admin", password_env=PASSWORD_ENV),
        tls=TlsSettings(),
        key_id="k",
    )


def _scope_depth() -> int:
    """How many cancel scopes enclose the current task. anyio walks this chain at every
    checkpoint (`checkpoint_if_cancelled`: each capacity limiter acquired, each ledger
    write), so its length is a per-await cost; only the asyncio backend's private state
    tells it."""
    task = asyncio.current_task()
    state = anyio_asyncio._task_states.get(task) if task is not None else None
    scope = state.cancel_scope if state is not None else None
    depth = 0
    while scope is not None:
        depth, scope = depth + 1, scope._parent_scope
    return depth


def _mock(_: ClusterSpec) -> httpx.AsyncBaseTransport:
    return httpx.MockTransport(lambda _: httpx.Response(500))


@pytest.mark.anyio
async def test_the_scopes_around_a_run_do_not_grow_with_its_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every cluster's read-back batcher runs in one task group of the pool: 200 clusters
    add as many cancel scopes around the rotation as one cluster does (a task group per
    batcher, entered one inside the other, added one scope per cluster)."""
    monkeypatch.setenv(PASSWORD_ENV, "unused")
    outside = _scope_depth()
    async with ClusterPool([_spec(1)], RunOptions(), _mock):
        one = _scope_depth() - outside
    async with ClusterPool([_spec(i) for i in range(200)], RunOptions(), _mock):
        many = _scope_depth() - outside
    assert many == one <= 2
