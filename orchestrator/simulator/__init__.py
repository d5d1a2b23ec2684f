"""A simulated fleet of ONTAP clusters: an ASGI app plus its state and scenario model.

Public API: `FleetSpec`, `ClusterDef`, `Fleet`, `Scenario`, `SimulatorApp`,
`SimulatorTransport`, `DropConnection`. The socket server lives in `server.py`.
"""

from __future__ import annotations

from orchestrator.simulator.app import SimulatorApp
from orchestrator.simulator.errors import ClusterUnreachable, DropConnection
from orchestrator.simulator.fleet import ClusterDef, Fleet, FleetSpec
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.transport import SimulatorTransport

__all__ = [
    "ClusterDef",
    "ClusterUnreachable",
    "DropConnection",
    "Fleet",
    "FleetSpec",
    "Scenario",
    "SimulatorApp",
    "SimulatorTransport",
]
