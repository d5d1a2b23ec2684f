"""Whole runs at each ONTAP version personality and simulator switch (issue 11's
variants): a dropped answer is settled, never re-sent, whatever the version (key-store
`state` only from 9.16.1), the job description, the 201 body or the busy answer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.simfleet import Runner, scenario, sim_fleet

pytestmark = pytest.mark.anyio

VERSIONS = ["9.12.1", "9.13.1", "9.14.1", "9.15.1", "9.16.1", "9.17.1"]
# The first two SVMs go first (one slot per cluster) and calibrate the job search; the
# answers to svm03's and svm04's POSTs are dropped after ONTAP accepted them.
DROPS = {"kind": "drop_after", "svm": "svm0[34]", "rate": 1.0}
SLOW_JOBS = {"job_duration": {"min_s": 0.1, "max_s": 0.1}}


async def _rotate(run_sim: Runner, version: str, **options: Any) -> dict[str, str]:
    run_options = {
        "per_cluster": 1,
        "return_timeout": options.pop("return_timeout", 0),
        "request_timeout_s": 0.25,  # a settle window of 0.5 s
    }
    sim = sim_fleet(1, 4, scenario=scenario(DROPS, **SLOW_JOBS, **options), versions=(version,))
    result = await run_sim(sim, **run_options)
    assert set(sim.rekeys().values()) == {1}, sim.rekeys()  # every SVM once, none twice
    stats = sim.fleet.stats()["clusters"]["c001"]
    assert stats["peak_concurrent_rekeys"] == 1
    return {str(r.key): str(r.outcome) for r in result.rows}


@pytest.mark.parametrize("version", VERSIONS)
async def test_dropped_answers_are_settled_at_every_version(run_sim: Runner, version: str) -> None:
    assert set((await _rotate(run_sim, version)).values()) == {"rekeyed"}


@pytest.mark.parametrize("wording", ["", "Rekey the SVM key encryption key"])
@pytest.mark.parametrize("version", ["9.14.1", "9.16.1"])
async def test_dropped_answers_are_settled_whatever_the_job_description(
    run_sim: Runner, version: str, wording: str
) -> None:
    outcomes = await _rotate(run_sim, version, job_description=wording)
    assert set(outcomes.values()) == {"rekeyed"}


@pytest.mark.parametrize("body", ["job", "job_uuid", "empty"])
@pytest.mark.parametrize("version", ["9.14.1", "9.17.1"])
async def test_every_201_body_is_rekeyed_once(run_sim: Runner, version: str, body: str) -> None:
    """A 201 (the job ended within return_timeout) with the job, its uuid only, or no
    body at all (then no job is known and nothing calibrates: the dropped answers are
    found by the configuration uuid in the default description)."""
    outcomes = await _rotate(run_sim, version, rekey_finished_body=body, return_timeout=30)
    assert set(outcomes.values()) == {"rekeyed"}


@pytest.mark.parametrize("busy", ["conflict", "queue"])
@pytest.mark.parametrize("expiry", [300.0, 1.0])
async def test_busy_answers_and_short_expiry_never_rekey_twice(
    run_sim: Runner, busy: str, expiry: float
) -> None:
    outcomes = await _rotate(run_sim, "9.14.1", busy_rekey=busy, job_expiry_s=expiry)
    assert set(outcomes.values()) <= {"rekeyed", "unverified"}
