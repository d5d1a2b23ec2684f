"""Rekey jobs: their lifecycle is computed from the clock, no background task needed.

A job is `queued` for the first tenth of its duration, then `running`, then `success` or
`failure` at `end_at`. The owning cluster "settles" a job (applies its effects) the first
time anyone looks after `end_at`.
"""

from __future__ import annotations

import enum
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.simulator.model import KmsConfig, Node
    from orchestrator.simulator.scenario import RekeyFault
    from orchestrator.simulator.timebase import Timebase

QUEUED_FRACTION = 0.1


class JobState(enum.StrEnum):
    """ONTAP job states the simulator produces."""

    QUEUED = "queued"  # accepted, not started
    RUNNING = "running"  # the key store shows svm_kek_rekey
    SUCCESS = "success"  # terminal: the new key id/version is in place
    FAILURE = "failure"  # terminal: `code`/`error` say why


@dataclass(eq=False)
class Job:
    """One rekey-external job on one configuration."""

    uuid: str
    config: KmsConfig
    key_id: str
    node: Node
    created_at: float
    end_at: float
    failure: RekeyFault | None
    settled: bool = False
    stats_entry: dict[str, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        """ONTAP's description of a REST-started job."""
        return f"POST /api/security/aws-kms/{self.config.uuid}/rekey-external"

    @property
    def href(self) -> str:
        """The job's self link."""
        return f"/api/cluster/jobs/{self.uuid}"

    def state(self, now: float) -> JobState:
        """The state at `now`."""
        if now >= self.end_at:
            return JobState.FAILURE if self.failure else JobState.SUCCESS
        queued_until = self.created_at + (self.end_at - self.created_at) * QUEUED_FRACTION
        return JobState.QUEUED if now < queued_until else JobState.RUNNING

    def link(self) -> dict[str, Any]:
        """`{"uuid", "_links": {"self": {"href"}}}`, as a 202 answer carries it."""
        return {"uuid": self.uuid, "_links": {"self": {"href": self.href}}}

    def record(self, now: float, timebase: Timebase) -> dict[str, Any]:
        """The full ONTAP job record at `now`."""
        state = self.state(now)
        record: dict[str, Any] = {
            "uuid": self.uuid,
            "description": self.description,
            "state": state.value,
            "message": self._message(state),
            "code": 0,
            "start_time": timebase.iso(self.created_at),
            "node": {"name": self.node.name},
            "svm": self.config.job_svm(),
            "_links": {"self": {"href": self.href}},
        }
        if state in (JobState.SUCCESS, JobState.FAILURE):
            record["end_time"] = timebase.iso(self.end_at)
        if state is JobState.FAILURE and self.failure is not None:
            record["code"] = self.failure.ontap_code
            record["error"] = {
                "code": str(self.failure.ontap_code),
                "message": self.failure.text,
                "arguments": [],
            }
        return record

    def _message(self, state: JobState) -> str:
        if state is JobState.FAILURE and self.failure is not None:
            return self.failure.text
        return {
            JobState.QUEUED: "Queued",
            JobState.RUNNING: "Rekeying the key encryption key",
            JobState.SUCCESS: "success",
        }.get(state, "")


def new_job_uuid(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (drawn from a seeded generator)."""
    return str(uuidlib.UUID(int=bits, version=4))
