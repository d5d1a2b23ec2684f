"""The lifecycle (core/lifecycle.py, core/settling.py) against a model cluster, driven by
Hypothesis through arbitrary drops before and after the POST, refusals, slow and failing
jobs, job expiry, time passing, kills and resumes.

The driver below is the engine's loop reduced to its decisions: every decision is the real
`decide()`, every settle the real `search()` / `absence_proven()` / `witnessed_lifetime()`
with the real calibration. What survives a kill is what the engine commits to the ledger
(state, evidence, intent time, earlier jobs, the calibration); the rest is lost. Asserted
after every step:

(a) no configuration is rekeyed twice (two successful jobs), and no POST is sent while the
    target's evidence says its attempt was accepted;
(b) NOT_SUBMITTED is decided only when the cluster has no job of that attempt;
(c) every running job belongs to a target that holds a cluster slot, and at most
    `LIMIT` targets hold one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from orchestrator.core.lifecycle import (
    Action,
    Decision,
    Event,
    Evidence,
    Observation,
    Reason,
    Wait,
    decide,
)
from orchestrator.core.settling import (
    Calibration,
    Finding,
    JobFacts,
    absence_proven,
    calibrate,
    search,
    witnessed_lifetime,
)
from orchestrator.core.targets import TargetState

TARGETS = 3
LIMIT = 2
SETTLE_WINDOW = 2.0
CLUSTER = "c1"


@dataclass
class Job:
    uuid: str
    config: int
    start: float
    end: float
    fails: bool
    description: str | None


@dataclass
class Row:
    """What the ledger keeps of a target."""

    state: TargetState = TargetState.PENDING
    evidence: Evidence = field(default_factory=Evidence)
    intent_at: float = 0.0
    attempts: int = 0
    earlier: frozenset[str] = frozenset()


class LifecycleMachine(RuleBasedStateMachine):
    """One cluster, three targets, a per-cluster limit of two."""

    @initialize(
        wording=st.sampled_from(["POST /api/security/aws-kms/{uuid}/rekey-external", "", "Rekey"]),
        expiry=st.sampled_from([1.0, 5.0, 300.0]),
        has_key_store_state=st.booleans(),
    )
    def setup(self, wording: str, expiry: float, has_key_store_state: bool) -> None:
        self.wording, self.expiry, self.key_store_state = wording, expiry, has_key_store_state
        self.now = 0.0
        self.jobs: list[Job] = []
        self.rows = [Row() for _ in range(TARGETS)]
        self.decisions: list[Decision | None] = [None] * TARGETS  # lost on a kill
        self.slots: set[int] = set()  # lost on a kill, retaken on resume
        self.calibration: Calibration | None = None  # persisted (ledger)
        self.seen_ended: dict[str, float] = {}  # rebuilt from the rows' evidence on resume
        self.counter = 0
        self.resume()

    # -- the model cluster --------------------------------------------------------------------

    def config_uuid(self, target: int) -> str:
        return f"cfg-{target}"

    def start_job(self, target: int, duration: float, fails: bool) -> Job:
        self.counter += 1
        text = self.wording.replace("{uuid}", self.config_uuid(target)) or None
        job = Job(f"job-{self.counter}", target, self.now, self.now + duration, fails, text)
        self.jobs.append(job)
        return job

    def listed(self) -> list[Job]:
        return [j for j in self.jobs if self.now < j.end or self.now - j.end < self.expiry]

    def facts(self, job: Job) -> JobFacts:
        ended = self.now >= job.end
        return JobFacts(
            job.uuid, job.description, f"svm{job.config}", job.start, job.end if ended else None
        )

    def running(self) -> list[Job]:
        return [j for j in self.jobs if j.start <= self.now < j.end]

    # -- the driver: one engine step of one target ---------------------------------------------

    def resume(self) -> None:
        """A fresh process: in-flight rows retake their slots before anything new."""
        self.slots = set()
        for i, row in enumerate(self.rows):
            self.decisions[i] = None
            if row.state is not TargetState.DONE:
                decision = decide(row.state, row.evidence, Observation(Event.BEGIN))
                self.decisions[i] = decision
                if row.state in (
                    TargetState.INTENT,
                    TargetState.SUBMITTED,
                    TargetState.UNCERTAIN,
                    TargetState.VERIFYING,
                ):
                    self.slots.add(i)
                    row.state = decision.state if decision.action is not Action.POST else row.state
        for row in self.rows:
            if row.evidence.job_uuid and row.evidence.ended_seen_at is not None:
                self.seen_ended.setdefault(row.evidence.job_uuid, row.evidence.ended_seen_at)

    def apply(self, i: int, obs: Observation) -> None:
        row = self.rows[i]
        decision = decide(row.state, row.evidence, obs)
        if decision.wait is Wait.BACKOFF and row.attempts >= 4:
            decision = decide(
                decision.state, row.evidence, Observation(Event.LIMIT, Reason.ATTEMPTS)
            )
        row.state = decision.state
        self.decisions[i] = decision
        if decision.action is Action.FINISH or decision.wait is Wait.BACKOFF:
            self.slots.discard(i)

    def learn(self, i: int, job: Job) -> None:
        facts = self.facts(job)
        if self.calibration is None:
            self.calibration = calibrate(CLUSTER, facts, self.config_uuid(i), f"svm{i}")
        else:
            self.calibration = self.calibration.checked_against(
                facts, self.config_uuid(i), f"svm{i}"
            )

    def saw_end(self, i: int, job: Job) -> None:
        row = self.rows[i]
        self.seen_ended.setdefault(job.uuid, self.now)
        ended = replace(row.evidence, ended_seen_at=row.evidence.ended_seen_at or self.now)
        row.evidence = (
            replace(ended, succeeded=True) if not job.fails else replace(ended, failed=True)
        )

    def post(self, i: int, fate: str, duration: float) -> None:
        row = self.rows[i]
        assert not row.evidence.blocks_post, "a POST while the attempt is known accepted"
        row.earlier |= {row.evidence.job_uuid} if row.evidence.job_uuid else frozenset()
        row.state, row.evidence = TargetState.INTENT, Evidence()
        row.intent_at, row.attempts = self.now, row.attempts + 1
        if fate == "refused":
            return self.apply(i, Observation(Event.POST_RETRYABLE))
        if fate == "drop_before":
            return self.apply(i, Observation(Event.POST_UNCERTAIN))
        if fate == "crash_before":  # killed after the intent was committed, before sending
            return self.resume()
        job = self.start_job(i, duration, fails=fate == "job_fails")
        if fate == "crash_after":  # killed while the answer was on its way
            return self.resume()
        if fate == "drop_after":
            return self.apply(i, Observation(Event.POST_UNCERTAIN))
        row.evidence = Evidence().accept("post", job.uuid)
        self.learn(i, job)
        self.apply(i, Observation(Event.POST_JOB))

    def follow(self, i: int) -> None:
        row = self.rows[i]
        job = next((j for j in self.listed() if j.uuid == row.evidence.job_uuid), None)
        if job is None:
            return self.apply(i, Observation(Event.JOB_LOST))
        if self.now < job.end:
            return self.apply(i, Observation(Event.JOB_RUNNING))
        self.saw_end(i, job)
        self.apply(i, Observation(Event.JOB_FAILED_RETRYABLE if job.fails else Event.JOB_SUCCEEDED))

    def settle(self, i: int) -> None:
        row = self.rows[i]
        listed = self.listed()
        if self.calibration is not None:
            seen = witnessed_lifetime((j.uuid for j in listed), self.seen_ended, self.now)
            self.calibration = self.calibration.with_lifetime(seen)
        found = search(
            [self.facts(j) for j in listed],
            self.calibration,
            config_uuid=self.config_uuid(i),
            svm=f"svm{i}",
            earlier=row.earlier,
            since=row.intent_at - 300.0,
        )
        mine = [
            j
            for j in self.jobs
            if j.config == i and j.start >= row.intent_at and j.uuid not in row.earlier
        ]
        elapsed = self.now - row.intent_at
        if found.finding is Finding.FOUND and found.job is not None:
            row.evidence = row.evidence.accept("settle_job", found.job.uuid)
            return self.apply(i, Observation(Event.FOUND_JOB))
        if self.key_store_state and any(self.now < j.end for j in mine):
            row.evidence = row.evidence.accept("key_store")
            return self.apply(i, Observation(Event.FOUND_REKEY))
        if elapsed < SETTLE_WINDOW or found.finding is Finding.AMBIGUOUS_RUNNING:
            return self.apply(i, Observation(Event.TOO_EARLY))
        if found.finding is Finding.AMBIGUOUS or not absence_proven(self.calibration, elapsed):
            return self.apply(i, Observation(Event.CANNOT_RULE_OUT))
        assert not mine, f"NOT_SUBMITTED while {mine} exists"  # (b)
        self.apply(i, Observation(Event.NOT_SUBMITTED))

    def verify(self, i: int) -> None:
        running = [j for j in self.jobs if j.config == i and self.now < j.end]
        if self.key_store_state and running:
            return self.apply(i, Observation(Event.VERIFY_PENDING))
        self.apply(i, Observation(Event.VERIFIED))  # a re-version: the key id never changes

    # -- rules ---------------------------------------------------------------------------------

    @rule(
        i=st.integers(0, TARGETS - 1),
        fate=st.sampled_from(
            [
                "ok",
                "ok",
                "drop_before",
                "drop_after",
                "refused",
                "job_fails",
                "crash_before",
                "crash_after",
            ]
        ),
        duration=st.sampled_from([0.1, 1.0, 4.0]),
    )
    def step(self, i: int, fate: str, duration: float) -> None:
        decision = self.decisions[i]
        if decision is None or decision.action is Action.FINISH:
            return
        if decision.action is Action.POST:
            if i not in self.slots and len(self.slots) >= LIMIT:
                return  # waits for a slot
            self.slots.add(i)
            return self.post(i, fate, duration)
        assert i in self.slots, "acting in flight without a slot"
        {Action.FOLLOW: self.follow, Action.SETTLE: self.settle, Action.VERIFY: self.verify}[
            decision.action
        ](i)

    @rule(dt=st.sampled_from([0.5, 1.5, 3.0, 10.0]))
    def tick(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: any(r.state is not TargetState.DONE for r in self.rows))
    @rule()
    def kill_and_resume(self) -> None:
        self.resume()

    # -- invariants ----------------------------------------------------------------------------

    @invariant()
    def never_twice(self) -> None:
        for i in range(TARGETS):
            good = [j for j in self.jobs if j.config == i and not j.fails]
            assert len(good) <= 1, f"target {i} rekeyed twice: {good}"

    @invariant()
    def running_jobs_hold_slots(self) -> None:
        assert len(self.slots) <= LIMIT
        for job in self.running():
            assert job.config in self.slots, f"{job} runs without its target holding a slot"


TestLifecycleAgainstAModelCluster = LifecycleMachine.TestCase
TestLifecycleAgainstAModelCluster.settings = settings(
    max_examples=150, stateful_step_count=60, deadline=None
)
