"""Reading a rekey job once, as a lifecycle observation, and what it teaches about the
cluster's job descriptions (the calibration)."""

from __future__ import annotations

from orchestrator.core.errors import OntapError
from orchestrator.core.providers import Operation, Provider
from orchestrator.core.settling import Calibration, CalibrationKind, JobFacts, calibrate
from orchestrator.observe import events
from orchestrator.observe.logging import EventLogger
from orchestrator.ontap.models import Job

log = EventLogger()  # structlog.get_logger() without its layers per call

# How a job is polled (the pauses, the limits): `core/backoff.py::WAITS[Purpose.POLL]`.


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
