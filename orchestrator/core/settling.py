"""What a job search can prove about a POST without an answer (pure).

ONTAP does not document the `description` of a rekey job, so nothing here trusts a guessed
string. A cluster's rekey jobs are *calibrated* from a job whose uuid the engine knows for
certain (a POST answer named it): its description, with the configuration uuid and the SVM
name replaced by placeholders, is what the cluster's rekey jobs look like. A calibration is
trusted for proofs of absence only once a second configuration's known job matched it.

A search then proves that a POST was *not* submitted only when

1. the cluster is calibrated and trusted (the search knows what to look for), and
2. the time since the intent is shorter than the job-record lifetime the engine has
   witnessed on that cluster (`witnessed_lifetime`: a job it saw ended before the intent
   is still listed), else a job of ours may have ended and been deleted unseen.

Everything else is "cannot rule out": the target ends `unverified`, never re-sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from orchestrator.core.providers import Operation, Provider

UUID_FIELD = "{uuid}"
SVM_FIELD = "{svm}"
CLUSTER_SCOPE = "-"
MIN_SVM_NAME_LEN = 3  # shorter names are not replaced: they could be part of anything

CalibrationKind = tuple[Provider, Operation]
"""Which endpoint's jobs a calibration describes."""


@dataclass(frozen=True)
class JobFacts:
    """The parts of a job record a search needs; times in the cluster's clock (unix s)."""

    uuid: str
    description: str | None
    svm: str | None
    start: float | None
    end: float | None


@dataclass(frozen=True)
class Calibration:
    """What one cluster's rekey jobs look like, learnt from a job whose uuid was known."""

    cluster: str
    description: str  # the template: `{uuid}` and `{svm}` stand for the target's values
    names_svm: bool  # the calibrating job carried its SVM's name
    job_uuid: str  # the calibrating job
    config_uuid: str  # its configuration
    confirmed: bool = False  # a job of another configuration matched the template
    unstable: bool = False  # a known job did not match: descriptions vary, never prove absence
    record_lifetime_s: float = 0.0  # measured lower bound of an ended job record's lifetime
    # Issue 15: each endpoint's jobs are calibrated apart (an Azure rekey-external job is
    # never worded like an AWS one, nor an internal like an external one).
    provider: Provider = Provider.AWS
    operation: Operation = Operation.EXTERNAL

    @property
    def kind(self) -> CalibrationKind:
        """The (provider, operation) whose jobs this calibration describes."""
        return (self.provider, self.operation)

    @property
    def trusted(self) -> bool:
        return self.confirmed and not self.unstable

    def description_for(self, config_uuid: str, svm: str) -> str:
        return self.description.replace(UUID_FIELD, config_uuid).replace(SVM_FIELD, svm)

    def with_lifetime(self, seconds: float) -> Calibration:
        """This calibration with the lifetime bound raised to `seconds` (never lowered)."""
        if seconds <= self.record_lifetime_s:
            return self
        return replace(self, record_lifetime_s=seconds)

    def checked_against(self, job: JobFacts, config_uuid: str, svm: str) -> Calibration:
        """This calibration after seeing a job known to be a rekey of `config_uuid`."""
        if job.uuid == self.job_uuid:
            return self
        if (job.description or "") != self.description_for(config_uuid, svm):
            return replace(self, unstable=True)
        if config_uuid != self.config_uuid and not self.confirmed:
            return replace(self, confirmed=True)
        return self


def calibrate(
    cluster: str,
    job: JobFacts,
    config_uuid: str,
    svm: str,
    kind: CalibrationKind = (Provider.AWS, Operation.EXTERNAL),
) -> Calibration:
    """A first calibration from a job known to be the `kind` rekey of `config_uuid` on `svm`."""
    # A job without a description calibrates too: the cluster's rekey jobs then carry
    # none, and only their SVM can tell them apart (`names_svm`).
    template = (job.description or "").replace(config_uuid, UUID_FIELD)
    if svm != CLUSTER_SCOPE and len(svm) >= MIN_SVM_NAME_LEN:
        template = template.replace(svm, SVM_FIELD)
    return Calibration(
        cluster=cluster,
        description=template,
        names_svm=job.svm is not None and job.svm == svm,
        job_uuid=job.uuid,
        config_uuid=config_uuid,
        provider=kind[0],
        operation=kind[1],
    )


class Match(StrEnum):
    """Whether a job found by a search is the rekey of the target being settled."""

    OURS = "ours"  # it is (its description names the configuration, or the calibration says so)
    FOREIGN = "foreign"  # it is not (the calibration shows rekey jobs look otherwise)
    UNKNOWN = "unknown"  # it might be: nothing tells


def match(job: JobFacts, calibration: Calibration | None, config_uuid: str, svm: str) -> Match:
    """Classify one job for the target (`config_uuid`, `svm`)."""
    description = job.description or ""
    if config_uuid and config_uuid in description:
        return Match.OURS
    if calibration is None or not calibration.trusted:
        return Match.UNKNOWN
    if UUID_FIELD in calibration.description:
        return Match.FOREIGN  # our rekey jobs name their configuration; this one does not
    if description != calibration.description_for(config_uuid, svm):
        return Match.FOREIGN
    if SVM_FIELD in calibration.description:
        return Match.OURS  # the description names our SVM
    if calibration.names_svm and svm != CLUSTER_SCOPE:
        return Match.OURS if job.svm == svm else Match.FOREIGN
    return Match.UNKNOWN


def witnessed_lifetime(
    listed: Iterable[str], ended_seen_at: Mapping[str, float], listed_at: float
) -> float:
    """A lower bound of how long an ended job's record stays listed, from one listing.

    A job the engine saw ended at its own time `t` (`ended_seen_at`) and still listed by a
    request sent at `listed_at` ended no later than `t`, so its record has lived at least
    `listed_at - t`. Both times are the engine's own clock: clock skew does not matter.
    """
    ages = [listed_at - ended_seen_at[uuid] for uuid in listed if uuid in ended_seen_at]
    return max([0.0, *ages])


class Finding(StrEnum):
    """What the job search says about the attempt."""

    FOUND = "found"  # a job of this attempt
    AMBIGUOUS = "ambiguous"  # a job that might be ours: cannot rule in or out
    AMBIGUOUS_RUNNING = "ambiguous_running"  # ... and it has not ended: it may be ours, running
    NOTHING = "nothing"  # no job that could be ours


@dataclass(frozen=True)
class Search:
    finding: Finding
    job: JobFacts | None = None


def search(
    jobs: Iterable[JobFacts],
    calibration: Calibration | None,
    *,
    config_uuid: str,
    svm: str,
    earlier: frozenset[str],
    since: float,
) -> Search:
    """The newest job of this attempt among `jobs` (started at or after `since`, not an
    earlier attempt's); AMBIGUOUS when some job might be ours and none is surely."""
    recent = [
        job for job in jobs if job.uuid not in earlier and (job.start is None or job.start >= since)
    ]
    verdicts = [(job, match(job, calibration, config_uuid, svm)) for job in recent]
    ours = [job for job, verdict in verdicts if verdict is Match.OURS]
    if ours:
        return Search(Finding.FOUND, max(ours, key=lambda job: job.start or float("inf")))
    unknown = [job for job, verdict in verdicts if verdict is Match.UNKNOWN]
    if any(job.end is None for job in unknown):
        return Search(Finding.AMBIGUOUS_RUNNING)
    if unknown:
        return Search(Finding.AMBIGUOUS)
    return Search(Finding.NOTHING)


def absence_proven(calibration: Calibration | None, elapsed_s: float) -> bool:
    """Whether "no job found" proves the POST was not submitted, `elapsed_s` after its
    intent: the search knew what to look for, and no record can have expired yet."""
    if calibration is None or not calibration.trusted:
        return False
    return elapsed_s < calibration.record_lifetime_s
