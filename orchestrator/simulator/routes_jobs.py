"""`/api/cluster/jobs` and `/api/cluster/jobs/{uuid}`."""

from __future__ import annotations

from typing import Any

from orchestrator.simulator.errors import not_found
from orchestrator.simulator.http import Ctx, Response, collection, instance
from orchestrator.simulator.jobs import Job
from orchestrator.simulator.query import Resource

JOB = Resource(
    schema={
        "uuid": None,
        "description": None,
        "state": None,
        "message": None,
        "code": None,
        "error": {"code": None, "message": None, "arguments": {"code": None, "message": None}},
        "start_time": None,
        "end_time": None,
        "node": {"name": None},
        "svm": {"name": None, "uuid": None},
        "_links": {"self": {"href": None}},
    },
    keys=("uuid",),
)


async def list_jobs(ctx: Ctx) -> Response:
    """GET /api/cluster/jobs (live, unexpired jobs in creation order)."""
    cluster = ctx.cluster
    live = [job for job in cluster.jobs.values() if cluster.job(job.uuid, ctx.now) is job]
    return collection(ctx, live, _builder(ctx), JOB)


async def get_job(ctx: Ctx) -> Response:
    """GET /api/cluster/jobs/{uuid}: 404 (code 4) once the record expired."""
    job = ctx.cluster.job(ctx.args["uuid"], ctx.now)
    if job is None:
        raise not_found("uuid")
    return instance(ctx, job, _builder(ctx), JOB)


def _builder(ctx: Ctx) -> Any:
    timebase = ctx.cluster.timebase

    def build(job: Job, _advanced: bool) -> dict[str, Any]:
        return job.record(ctx.now, timebase)

    return build
