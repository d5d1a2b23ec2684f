"""Each row of the spec's error policy, driven through the simulator (ground truth)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from orchestrator.core.exitcodes import ExitCode
from orchestrator.ledger.store import Ledger
from tests.simfleet import Runner, scenario, sim_fleet

pytestmark = pytest.mark.anyio


def _only(result):  # type: ignore[no-untyped-def]
    (row,) = result.rows
    return row


async def test_keystore_initializing_three_attempts_rekeyed_on_fourth(run_sim: Runner) -> None:
    sim = sim_fleet(1, 1, scenario=scenario({"kind": "keystore_initializing", "attempts": 3}))
    row = _only(await run_sim(sim))
    assert (row.outcome, row.attempts) == ("rekeyed", 4)
    assert sim.rekeys() == {"c001/svm01": 1}


async def test_keystore_switching_stuck_fails_with_patch_hint(run_sim: Runner) -> None:
    sim = sim_fleet(1, 1, scenario=scenario({"kind": "keystore_switching"}))
    result = await run_sim(sim)
    row = _only(result)
    assert row.outcome == "failed"
    assert row.error_code == "65537610"
    assert "PATCH /api/security/key-stores" in (row.error_hint or "")
    assert 1 < row.attempts <= 6
    assert sim.rekeys() == {"c001/svm01": 0}
    assert result.exit_code is ExitCode.INCOMPLETE


async def test_node_failure_twice_then_rekeyed(run_sim: Runner) -> None:
    sim = sim_fleet(1, 1, scenario=scenario({"kind": "node_failure", "attempts": 2}))
    row = _only(await run_sim(sim))
    assert (row.outcome, row.attempts) == ("rekeyed", 3)


async def test_keys_in_admin_svm_fails_after_one_attempt_with_migrate_hint(
    run_sim: Runner,
) -> None:
    sim = sim_fleet(1, 1, scenario=scenario({"kind": "keys_in_admin_svm"}))
    row = _only(await run_sim(sim))
    assert (row.outcome, row.attempts, row.error_code) == ("failed", 1, "65537547")
    assert "migrate" in (row.error_hint or "").lower()


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "unwrap_key_failed"},
        {"kind": "missing_kek"},
        {"kind": "keystore_disabling"},
        {"kind": "rekey_error", "code": 6, "status": 403},  # permission denied
        {"kind": "rekey_error", "code": 262197, "status": 400},  # another 4xx
        {"kind": "rekey_error", "code": 123456789, "status": 400},  # an unknown code
    ],
    ids=lambda fault: f"{fault['kind']}-{fault.get('code', '')}",
)
async def test_permanent_codes_fail_after_one_attempt(
    run_sim: Runner, fault: dict[str, object]
) -> None:
    sim = sim_fleet(1, 1, scenario=scenario(fault))
    row = _only(await run_sim(sim))
    assert (row.outcome, row.attempts) == ("failed", 1)
    assert row.error_code == str(fault.get("code", row.error_code))
    assert row.error_hint
    assert sim.fleet.stats()["svms"]["c001/svm01"]["attempts"] == 1  # never retried
    assert sim.rekeys() == {"c001/svm01": 0}


async def test_not_configured_on_post_is_skipped(run_sim: Runner) -> None:
    sim = sim_fleet(1, 1, scenario=scenario({"kind": "not_configured"}))
    row = _only(await run_sim(sim))
    assert (row.outcome, row.reason) == ("skipped", "not_configured")


async def test_svm_without_aws_kms_named_in_inventory_is_skipped(run_sim: Runner) -> None:
    sim = sim_fleet(1, 2, explicit=True, scenario=scenario({"kind": "no_aws_kms", "svm": "svm02"}))
    result = await run_sim(sim)
    outcomes = {str(r.key): (r.outcome, r.reason) for r in result.rows}
    assert outcomes == {
        "c001/svm01": ("rekeyed", None),
        "c001/svm02": ("skipped", "not_configured"),
    }


async def test_wrong_password_skips_cluster_after_exactly_one_failed_login(
    run_sim: Runner,
) -> None:
    faults = {"kind": "wrong_password", "cluster": "c002", "password": "other"}
    sim = sim_fleet(2, 3, scenario=scenario(faults))
    result = await run_sim(sim)
    skipped = {str(r.key) for r in result.rows if r.reason == "auth_failed"}
    assert skipped == {"c002/*"}
    stats = sim.fleet.stats()["clusters"]
    assert stats["c002"]["failed_logins"] == 1
    assert {r.outcome for r in result.rows if r.key.cluster == "c001"} == {"rekeyed"}


async def test_old_ontap_is_skipped_unsupported_version(run_sim: Runner) -> None:
    sim = sim_fleet(
        1, 2, explicit=True, scenario=scenario({"kind": "version", "version": "9.11.1"})
    )
    result = await run_sim(sim)
    assert {(r.outcome, r.reason) for r in result.rows} == {("skipped", "unsupported_version")}


async def test_job_failure_code_is_failed(run_sim: Runner) -> None:
    sim = sim_fleet(1, 1, scenario=scenario({"kind": "job_failure", "code": 65537543}))
    row = _only(await run_sim(sim))
    assert (row.outcome, row.error_code) == ("failed", "65537543")


async def test_overload_429_is_retried_until_rekeyed(run_sim: Runner) -> None:
    sim = sim_fleet(1, 6, scenario=scenario({"kind": "overload", "max_concurrent_requests": 1}))
    result = await run_sim(sim, per_cluster=4)
    assert {r.outcome for r in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}


async def test_5xx_on_rekey_retried(run_sim: Runner) -> None:
    sim = sim_fleet(
        1,
        4,
        scenario=scenario(
            {"kind": "http_errors", "rate": 0.5, "requests": "rekey", "statuses": [503]}
        ),
    )
    result = await run_sim(sim)
    assert {r.outcome for r in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}


async def test_drop_after_post_took_effect_is_settled_not_resent(run_sim: Runner) -> None:
    sim = sim_fleet(1, 3, scenario=scenario({"kind": "drop_after", "rate": 1.0}))
    result = await run_sim(sim)
    assert {r.outcome for r in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}


# Proof that a POST was not submitted needs a calibrated cluster (two configurations'
# known jobs) and a witnessed job-record lifetime (a job seen ended before the intent):
# the drops hit the SVMs after the first two, which go first with one slot per cluster.
WARM = {"svm": "svm0[3-9]"}


async def test_drop_before_post_is_resent_once_proven_not_submitted(run_sim: Runner) -> None:
    sim = sim_fleet(1, 5, scenario=scenario({"kind": "drop_before", "rate": 0.5, **WARM}))
    result = await run_sim(sim, per_cluster=1)
    assert {r.outcome for r in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}


async def test_unanswered_post_is_resent_only_after_the_settle_window(
    run_sim: Runner, tmp_path: Path
) -> None:
    """A POST dropped before it reached ONTAP leaves no trace; it may still be queued, so
    the re-send waits until the settle window (twice the request timeout) has passed."""
    sim = sim_fleet(1, 6, scenario=scenario({"kind": "drop_before", "rate": 0.5, **WARM}))
    # window 3 s, beyond the 2 s pause
    result = await run_sim(sim, request_timeout_s=1.5, per_cluster=1)
    assert {r.outcome for r in result.rows} == {"rekeyed"}
    with Ledger.open(tmp_path / "state.db") as ledger:
        transitions = ledger.transitions(result.run.run_id)
    starts: dict[str, list[float]] = {}
    for t in transitions:
        if t.event == "attempt.started":
            starts.setdefault(str(t.key), []).append(t.at)
    resent = {k: v for k, v in starts.items() if len(v) > 1}
    assert resent, "the seeded drops should force at least one re-send"
    for times in resent.values():
        assert all(b - a >= 3.0 for a, b in itertools.pairwise(times))
    assert set(sim.rekeys().values()) == {1}


async def test_drop_after_post_is_settled_despite_a_cluster_clock_behind_ours(
    run_sim: Runner,
) -> None:
    """The cluster's clock is 90 s behind: its job looks older than our intent, yet it is
    found (and no second POST is sent)."""
    sim = sim_fleet(
        1, 3, scenario=scenario({"kind": "drop_after", "rate": 1.0}, clock_skew_s=-90.0)
    )
    result = await run_sim(sim)
    assert {r.outcome for r in result.rows} == {"rekeyed"}
    assert set(sim.rekeys().values()) == {1}
