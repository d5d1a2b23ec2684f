"""What a job search may prove (core/settling.py): calibration, matching, the witnessed
record lifetime and the proof of absence."""

from __future__ import annotations

import pytest

from orchestrator.core.settling import (
    Calibration,
    Finding,
    JobFacts,
    Match,
    absence_proven,
    calibrate,
    match,
    search,
    witnessed_lifetime,
)

DEFAULT = "POST /api/security/aws-kms/{uuid}/rekey-external"


def job(
    uuid: str, description: str | None, svm: str | None = "svm1", end: float | None = 5.0
) -> JobFacts:
    return JobFacts(uuid, description, svm, start=1.0, end=end)


def trusted(description: str, *, names_svm: bool = True, lifetime: float = 100.0) -> Calibration:
    return Calibration("c1", description, names_svm, "j0", "cfg-0", confirmed=True,
                       record_lifetime_s=lifetime)  # fmt: skip


def test_calibration_templates_the_uuid_and_the_svm() -> None:
    learnt = calibrate("c1", job("j1", "rekey cfg-1 on svm1"), "cfg-1", "svm1")
    assert learnt.description == "rekey {uuid} on {svm}"
    assert learnt.names_svm and not learnt.trusted  # one configuration proves nothing yet


def test_a_second_configuration_confirms_and_a_mismatch_makes_it_unstable() -> None:
    learnt = calibrate("c1", job("j1", DEFAULT.replace("{uuid}", "cfg-1")), "cfg-1", "svm1")
    confirmed = learnt.checked_against(
        job("j2", DEFAULT.replace("{uuid}", "cfg-2"), "svm2"), "cfg-2", "svm2"
    )
    assert confirmed.trusted
    unstable = confirmed.checked_against(job("j3", "something else", "svm3"), "cfg-3", "svm3")
    assert not unstable.trusted and unstable.unstable


def test_the_uuid_anywhere_in_a_description_is_ours_without_calibration() -> None:
    assert match(job("j", "a job about cfg-1 here"), None, "cfg-1", "svm1") is Match.OURS
    assert match(job("j", "Rekey"), None, "cfg-1", "svm1") is Match.UNKNOWN


@pytest.mark.parametrize(
    ("template", "description", "svm", "expected"),
    [
        (DEFAULT, DEFAULT.replace("{uuid}", "cfg-2"), "svm2", Match.FOREIGN),
        ("Rekey", "Rekey", "svm1", Match.OURS),  # same wording, our SVM
        ("Rekey", "Rekey", "svm2", Match.FOREIGN),  # same wording, another SVM
        ("Rekey", "Other job", "svm1", Match.FOREIGN),
        ("", None, "svm1", Match.OURS),  # rekey jobs carry no description: by SVM
    ],
)
def test_a_trusted_calibration_tells_ours_from_foreign(
    template: str, description: str | None, svm: str, expected: Match
) -> None:
    assert match(job("j", description, svm), trusted(template), "cfg-1", "svm1") is expected


def test_a_job_that_might_be_ours_and_still_runs_is_reported_as_such() -> None:
    running = search([job("j", "Rekey", end=None)], None, config_uuid="cfg-1", svm="svm1",
                     earlier=frozenset(), since=0.0)  # fmt: skip
    assert running.finding is Finding.AMBIGUOUS_RUNNING
    earlier = search([job("j", DEFAULT.replace("{uuid}", "cfg-1"))], None, config_uuid="cfg-1",
                     svm="svm1", earlier=frozenset({"j"}), since=0.0)  # fmt: skip
    assert earlier.finding is Finding.NOTHING  # an earlier attempt's job is not this one's


def test_the_lifetime_is_witnessed_in_the_engines_own_clock() -> None:
    assert witnessed_lifetime(["a", "b", "x"], {"a": 10.0, "b": 40.0}, listed_at=50.0) == 40.0
    assert witnessed_lifetime(["x"], {"a": 10.0}, listed_at=50.0) == 0.0


def test_absence_needs_a_trusted_calibration_and_a_young_intent() -> None:
    assert absence_proven(trusted(DEFAULT, lifetime=60.0), elapsed_s=10.0)
    assert not absence_proven(trusted(DEFAULT, lifetime=60.0), elapsed_s=61.0)  # may have expired
    assert not absence_proven(None, elapsed_s=0.1)
    untrusted = calibrate("c1", job("j1", "x"), "cfg-1", "svm1").with_lifetime(60.0)
    assert not absence_proven(untrusted, elapsed_s=1.0)
