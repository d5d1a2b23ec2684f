"""Jobs (rekeys, key migrations): their lifecycle is computed from the clock, no
background task needed.

A job is `queued` until `start_at` (later than its creation when it waits for a running
rekey, `busy_rekey: queue`) plus the first tenth of its run, then `running` (with the
option `paused_fraction`, `paused` for that share of its run, in the middle), then
`success` or `failure` at `end_at`. The owning cluster "settles" a job (applies its
effects) the first time anyone looks after `end_at`.
"""

from __future__ import annotations

import enum
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.simulator.model import KmsConfig, Node
    from orchestrator.simulator.timebase import Timebase

QUEUED_FRACTION = 0.1


@dataclass(frozen=True)
class Failure:
    """Why a job fails: ONTAP's code and message."""

    code: int
    message: str


class JobState(enum.StrEnum):
    """ONTAP job states the simulator produces."""

    QUEUED = "queued"  # accepted, not started
    RUNNING = "running"  # the key store shows svm_kek_rekey
    PAUSED = "paused"  # not terminal: it goes on running (option paused_fraction)
    SUCCESS = "success"  # terminal: the new key id/version is in place
    FAILURE = "failure"  # terminal: `code`/`error` say why


@dataclass(eq=False)
class Job:
    """One job on one configuration: a rekey (`kind` "rekey" external, "rekey_internal")
    or a key migration ("migrate")."""

    uuid: str
    config: KmsConfig
    key_id: str
    node: Node
    created_at: float
    end_at: float
    failure: Failure | None
    description: str | None = None  # None: the record has no description
    start_at: float | None = None  # when it stops waiting for an earlier job
    after: Job | None = None  # the rekey it waits for (`busy_rekey: queue`)
    kind: str = "rekey"
    paused_fraction: float = 0.0
    running_code: int = 0
    settled: bool = False
    stats_entry: dict[str, Any] = field(default_factory=dict)

    @property
    def begins(self) -> float:
        """When the job's own run begins (after any job it waited for)."""
        return self.created_at if self.start_at is None else self.start_at

    @property
    def href(self) -> str:
        """The job's self link."""
        return f"/api/cluster/jobs/{self.uuid}"

    def state(self, now: float) -> JobState:
        """The state at `now`."""
        if now >= self.end_at:
            return JobState.FAILURE if self.failure else JobState.SUCCESS
        run = self.end_at - self.begins
        if now < self.begins + run * QUEUED_FRACTION:
            return JobState.QUEUED
        middle = self.begins + run / 2
        half_pause = run * self.paused_fraction / 2
        if self.paused_fraction and middle - half_pause <= now < middle + half_pause:
            return JobState.PAUSED
        return JobState.RUNNING

    def link(self) -> dict[str, Any]:
        """`{"uuid", "_links": {"self": {"href"}}}`, as a 202 answer carries it."""
        return {"uuid": self.uuid, "_links": {"self": {"href": self.href}}}

    def record(self, now: float, timebase: Timebase) -> dict[str, Any]:
        """The full ONTAP job record at `now`."""
        state = self.state(now)
        record: dict[str, Any] = {"uuid": self.uuid}
        if self.description is not None:
            record["description"] = self.description
        record |= {
            "state": state.value,
            "message": self._message(state),
            "code": self.running_code if state not in TERMINAL else 0,
            "start_time": timebase.iso(self.created_at),
            "node": {"name": self.node.name},
            "svm": self.config.job_svm(),
            "_links": {"self": {"href": self.href}},
        }
        if state in (JobState.SUCCESS, JobState.FAILURE):
            record["end_time"] = timebase.iso(self.end_at)
        if state is JobState.FAILURE and self.failure is not None:
            record["code"] = self.failure.code
            record["error"] = {
                "code": str(self.failure.code),
                "message": self.failure.message,
                "arguments": [],
            }
        return record

    def _message(self, state: JobState) -> str:
        if state is JobState.FAILURE and self.failure is not None:
            return self.failure.message
        return {
            JobState.QUEUED: "Queued",
            JobState.PAUSED: "Paused",
            JobState.RUNNING: RUNNING_MESSAGES.get(self.kind, "Running"),
            JobState.SUCCESS: "success",
        }.get(state, "")


TERMINAL = frozenset({JobState.SUCCESS, JobState.FAILURE})
RUNNING_MESSAGES = {
    "rekey": "Rekeying the key encryption key",
    "rekey_internal": "Rekeying the SVM key encryption key",
    "migrate": "Migrating keys from the admin SVM",
}


def new_job_uuid(bits: int) -> str:
    """A version-4 UUID string from 128 random bits (drawn from a seeded generator)."""
    return str(uuidlib.UUID(int=bits, version=4))
