"""Following a rekey job to its end."""

from __future__ import annotations

import anyio
import structlog

from orchestrator.core.errors import OntapError
from orchestrator.observe import events
from orchestrator.ontap.client import OntapClient
from orchestrator.ontap.models import Job

log = structlog.get_logger()

POLL_FIRST_S = 1.0
POLL_MAX_S = 10.0
POLL_FACTOR = 1.5
MAX_CONSECUTIVE_GET_ERRORS = 3  # as NetApp's Ansible collection: then settle from state
MAX_FOLLOW_S = 3600.0  # a job still running after an hour is settled from state later


async def follow_job(client: OntapClient, job_uuid: str) -> Job | None:
    """Poll the job until it ends; None when it is gone (404) or cannot be read.

    None means "settle from the cluster's state": the job record expires about 300 s
    after it ends, and a few failed GETs in a row say the cluster is not answering.
    """
    delay, errors = POLL_FIRST_S, 0
    with anyio.move_on_after(MAX_FOLLOW_S):
        while True:
            try:
                job = await client.get_job(job_uuid)
                errors = 0
            except OntapError as err:
                if err.status == 404:
                    return None
                errors += 1
                if errors >= MAX_CONSECUTIVE_GET_ERRORS:
                    return None
            else:
                log.debug(events.JOB_POLLED, job_uuid=job_uuid, state=job.state)
                if job.is_terminal:
                    return job
            await anyio.sleep(delay)
            delay = min(POLL_MAX_S, delay * POLL_FACTOR)
    return None
