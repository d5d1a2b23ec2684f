"""Reading a rekey job once, as a lifecycle observation, and what it teaches about the
cluster's job descriptions (the calibration)."""

from __future__ import annotations

import structlog

from orchestrator.core.errors import OntapError
from orchestrator.core.providers import Operation, Provider
from orchestrator.core.settling import Calibration, CalibrationKind, JobFacts, calibrate
from orchestrator.observe import events
from orchestrator.ontap.models import Job

log = structlog.get_logger()

POLL_FIRST_S = 1.0
POLL_MAX_S = 10.0
POLL_FACTOR = 1.5
MAX_CONSECUTIVE_GET_ERRORS = 3  # as NetApp's Ansible collection: then the job counts as lost
MAX_FOLLOW_S = 3600.0  # a job still running after an hour: the outcome is not known


def poll_delay(polls: int) -> float:
    """The pause before poll number `polls` (1-based) of one job."""
    return float(min(POLL_MAX_S, POLL_FIRST_S * POLL_FACTOR ** max(0, polls - 1)))


def is_gone(err: OntapError) -> bool:
    """A 404 on the job: its record expired (ONTAP deletes it a while after it ends)."""
    return err.status == 404


def job_facts(job: Job) -> JobFacts:
    """The parts of a job the settle search and the calibration need."""
    return JobFacts(
        uuid=job.uuid,
        description=job.description,
        svm=job.svm_name,
        start=job.start_time.timestamp() if job.start_time else None,
        end=job.end_time.timestamp() if job.end_time else None,
    )


def learn_from_known_job(
    cluster: str,
    calibration: Calibration | None,
    job: Job,
    config_uuid: str,
    svm: str,
    kind: CalibrationKind = (Provider.AWS, Operation.EXTERNAL),
) -> Calibration | None:
    """The cluster's calibration of `kind` after seeing `job`, known for certain to be the
    rekey of `config_uuid` (an answer to our POST named it)."""
    facts = job_facts(job)
    if calibration is None:
        learnt = calibrate(cluster, facts, config_uuid, svm, kind)
        log.info(
            events.JOB_DESCRIPTIONS_CALIBRATED,
            description=learnt.description,
            job_uuid=job.uuid,
            provider=kind[0].value,
            rekey=kind[1].value,
        )
        return learnt
    return calibration.checked_against(facts, config_uuid, svm)
