"""Connections opened for the rotation's first round (engine/pool.py: `first_round`,
`ClusterPool.warm_up`), over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

from orchestrator.core.inventory import BasicAuth, ClusterSpec, TlsSettings
from orchestrator.core.options import RunOptions
from orchestrator.core.targets import TargetKey, TargetState
from orchestrator.engine.pool import ClusterPool, first_round
from orchestrator.ledger.records import TargetRow

PASSWORD_ENV = "ONTAP_TEST_WARM_PASSWORD"
pytestmark = pytest.mark.anyio


def _spec(name: str, port: int = 1) -> ClusterSpec:
    return ClusterSpec(
        name=name,
        base_url=f"http://127.0.0.1:{port}",
        auth=BasicAuth("admin", password_env=PASSWORD_ENV),
        tls=TlsSettings(),
        key_id="k",
    )


def _rows(cluster: str, count: int, state: TargetState = TargetState.PENDING) -> list[TargetRow]:
    return [TargetRow("run", TargetKey(cluster, f"svm{i:02}"), state=state) for i in range(count)]


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "unused")


def _first_round(options: RunOptions, **targets: int) -> dict[str, int]:
    """(Within an event loop: a pool builds its limiters and transports.)"""
    pool = ClusterPool([_spec(name) for name in targets], options)
    rows = [row for name, count in targets.items() for row in _rows(name, count)]
    return first_round(rows, pool.clusters, options)


async def test_the_first_round_when_every_cluster_starts_at_once() -> None:
    options = RunOptions(waves="100%", per_cluster=4, concurrency=1000)
    assert _first_round(options, c001=40, c002=2) == {"c001": 4, "c002": 2}


async def test_no_first_round_when_the_first_wave_is_a_part_of_the_targets() -> None:
    """The default waves start with a canary: the big wave starts much later."""
    assert _first_round(RunOptions(waves="1,10%,100%"), c001=40, c002=40) == {}


async def test_no_first_round_when_the_global_limit_does_not_hold_it() -> None:
    """3 clusters x 4 under --concurrency 8: lanes feed 3 clusters but the slots hold 8 of
    the 12 first POSTs (in an emergency, too: every cluster is fed, 8 slots)."""
    for emergency in (False, True):
        options = RunOptions(waves="100%", per_cluster=4, concurrency=8, emergency=emergency)
        assert _first_round(options, c001=40, c002=40, c003=40) == {}


async def test_no_first_round_when_lanes_feed_only_some_clusters() -> None:
    """Limits 4 x 3 clusters = 12 > --concurrency 5 with 1 target each: the first round
    (3 POSTs) fits, but lanes feed ceil(1.25 x 5 x 3 / 12) = 2 of the 3 clusters at first."""
    options = RunOptions(waves="100%", per_cluster=4, concurrency=5)
    assert _first_round(options, c001=1, c002=1, c003=1) == {}


async def test_targets_already_done_need_no_connection() -> None:
    options = RunOptions(waves="100%", per_cluster=4)
    pool = ClusterPool([_spec("c001"), _spec("c002")], options)
    rows = _rows("c001", 3) + _rows("c002", 5, TargetState.DONE)
    assert first_round(rows, pool.clusters, options) == {"c001": 3}


@asynccontextmanager
async def _listener() -> AsyncIterator[list[int]]:
    """A TCP server that counts connections and bytes received (none expected)."""
    seen = [0, 0]

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen[0] += 1
        seen[1] += len(await reader.read(65536))
        writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    seen.append(server.sockets[0].getsockname()[1])
    try:
        yield seen
    finally:
        server.close()


async def test_the_pool_opens_each_clusters_first_round_and_sends_nothing() -> None:
    options = RunOptions(waves="100%", per_cluster=3, concurrency=1000)
    async with _listener() as seen:
        port = seen[2]
        async with ClusterPool([_spec("c001", port)], options) as pool:
            pool.warm_up(_rows("c001", 10))
            with anyio.fail_after(30):
                while seen[0] < 3:
                    await anyio.sleep(0.05)
            await anyio.sleep(0.2)  # anything sent would have arrived
            assert seen[:2] == [3, 0]
        await anyio.sleep(0.2)  # closed with the pool, still without a byte sent
    assert seen[:2] == [3, 0]
