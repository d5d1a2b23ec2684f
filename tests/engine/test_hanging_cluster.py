"""A cluster that accepts connections and never answers cannot hold up the fleet."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from orchestrator.core.inventory import BasicAuth, ClusterSpec, Inventory, TlsSettings
from orchestrator.core.selectors import Selection
from orchestrator.engine.runner import RunRequest, Wiring, execute_run
from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.store import Ledger
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import running_simulator
from tests.simfleet import FAST, PASSWORD_ENV


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A loopback port that completes the TCP handshake (backlog) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def _spec(name: str, url: str) -> ClusterSpec:
    auth = BasicAuth(username="admin", password_env=PASSWORD_ENV)
    return ClusterSpec(
        name=name, base_url=url, auth=auth, tls=TlsSettings(), key_id="current", all_svms=True
    )


def test_hung_cluster_is_skipped_after_the_discovery_timeout(
    tmp_path: Path, hanging_url: str
) -> None:
    jobs = {"options": {"job_duration": {"min_s": 0.01, "max_s": 0.02}}}
    with running_simulator(FleetSpec.generate(2, 3), Scenario.model_validate(jobs)) as sim:
        specs = [_spec(name, url) for name, url in sim.urls.items()]
        inventory = Inventory(
            path=Path("inv.yaml"),
            sha256="0" * 64,
            version=1,
            clusters=(*specs, _spec("hung", hanging_url)),
        )
        # the request timeout alone would wait 30 s: the discovery timeout must act first
        options = replace(FAST, request_timeout_s=30.0, discovery_timeout_s=1.0)
        with Ledger.open(tmp_path / "state.db") as ledger:
            wiring = Wiring(AsyncLedger(ledger), handle_signals=False)
            request = RunRequest(inventory, Selection(), options)
            # a sync test: the simulator's own loop thread must close outside any event loop
            result = anyio.run(execute_run, request, wiring)
    assert result is not None
    by_cluster = {row.key.cluster: row for row in result.rows}
    hung = by_cluster["hung"]
    assert (hung.outcome, hung.reason) == ("skipped", "unreachable")
    assert "--discovery-timeout" in (hung.error_message or "")
    others = [row for row in result.rows if row.key.cluster != "hung"]
    assert len(others) == 6
    assert {row.outcome for row in others} == {"rekeyed"}
