"""Issue 13 point 10: docs/logging.md's catalogue is what the code emits, and `--log-level`.

A representative fleet on 127.0.0.1 goes through the command line with `--log-level debug`
and `--log-file`: a run with retries, drops, a 401, an unreachable cluster, a wrong
password, a fatal error and a cluster without TLS verification; a fail-fast run that
aborts; a run interrupted by SIGINT; an internal error. Every JSON line of those logs must
be a documented event at a documented level with documented fields; every documented
event, and every documented field, must show up at least once.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import yaml

from orchestrator.cli import main
from orchestrator.engine.breaker import CircuitBreaker
from orchestrator.ledger.records import RunRecord, RunStatus
from orchestrator.ledger.store import Ledger
from orchestrator.observe.logging import configure_logging
from orchestrator.simulator.fleet import FleetSpec
from orchestrator.simulator.inventory_writer import PASSWORD_ENV, inventory_document
from orchestrator.simulator.scenario import Scenario
from orchestrator.simulator.server import running_simulator
from tests.cli_interrupt import interrupted_run
from tests.log_catalogue import BOUND, ENVELOPE, catalogue

pytestmark = pytest.mark.slow

FAULTS: list[dict[str, Any]] = [
    {"kind": "keystore_initializing", "cluster": "c001", "svm": "svm01", "attempts": 1},
    {"kind": "drop_after", "cluster": "c001", "svm": "svm02", "rate": 1.0},
    {"kind": "rekey_error", "cluster": "c002", "svm": "svm01", "status": 401, "code": 6},
    {"kind": "unreachable", "cluster": "c003"},
    {"kind": "wrong_password", "cluster": "c004", "password": "other"},
    {"kind": "keys_in_admin_svm", "cluster": "c005", "svm": "svm01"},
    # c006: `tls: {verify: false}` in the inventory; c007: slow jobs, to be interrupted
    {"kind": "job_duration", "cluster": "c007", "min_s": 3.0, "max_s": 3.0},
]
SCENARIO = {"options": {"job_duration": {"min_s": 0.05, "max_s": 0.3}}, "faults": FAULTS}
WRONG_UUID = "00000000-0000-4000-8000-000000000000"
RETRY = {"65539436": {"base_delay_s": 0.1, "max_delay_s": 0.2}}


@pytest.fixture
def inventory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(PASSWORD_ENV, "netapp-sim")
    monkeypatch.setenv("ONTAP_REKEY_STDERR_LEVEL", "error")
    monkeypatch.chdir(tmp_path)
    spec = FleetSpec.generate(7, 3)
    with running_simulator(spec, Scenario.model_validate(SCENARIO), seed=11) as sim:
        document = inventory_document(spec, sim.urls)
        document["retry"] = RETRY
        document["clusters"][5]["tls"] = {"verify": False}  # http anyway: only the flag
        # Two more entries for c006's address: another name (a warning only), and a
        # pinned uuid that is not the cluster's (skipped: identity_mismatch).
        c006 = document["clusters"][5]
        document["clusters"].append({**c006, "name": "alias-c006"})
        document["clusters"].append({**c006, "name": "alias-wrong", "uuid": WRONG_UUID})
        path = tmp_path / "inv.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        yield path


def _run(inventory: Path, log: str, *extra: str) -> int:
    argv = [str(inventory), "--yes", "--state", "state.db", "--report-dir", f"reports-{log}"]
    return main(["run", *argv, "--log-file", f"{log}.jsonl", *extra])


def _lines(*paths: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for path in paths for line in path.read_text().splitlines()]
    return [line for line in lines if "logger" not in line]  # httpx & co: not our events


def _representative_logs(
    inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[dict[str, Any]]:
    debug = ("--log-level", "debug")
    # --return-timeout 0: every POST answers 202 at once, so jobs are polled
    main_run = (
        "--cluster",
        "c00[1-6]",
        "--waves",
        "100%",
        "--return-timeout",
        "0",
        "--max-fail-percent",
        "100",
        "--concurrency",  # under the clusters' limits (12): an overlapped run
        "2",
    )
    assert _run(inventory, "main", *debug, *main_run, "--request-timeout", "1") == 3
    fail_fast = ("--cluster", "c005", "--fail-fast", "--per-cluster", "1")
    assert _run(inventory, "fail-fast", *debug, *fail_fast) == 4
    assert _run(inventory, "identity", *debug, "--cluster", "alias-*", "--waves", "100%") == 3
    argv = [str(inventory), "--yes", "--state", "state.db", "--report-dir", "reports-int"]
    argv += ["--cluster", "c00[67]", "--per-cluster", "1", "--waves", "100%", *debug]
    argv += ["--concurrency", "1"]  # two clusters' limits over it: an overlapped run
    argv += ["--log-file", "interrupted.jsonl"]
    assert interrupted_run(argv, Path("state.db"), tmp_path / "int.out", started=1) == 130
    # --yes, one wave: an overlapped run, whose resume says which clusters it discovers
    (interrupted,) = [run for run in _runs() if run.status is RunStatus.INTERRUPTED]
    resume = ["resume", interrupted.run_id, "--state", "state.db", "--report-dir", "reports-res"]
    assert main([*resume, "--log-file", "resumed.jsonl", *debug]) == 0

    def bug(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr("orchestrator.commands.run.execute_run", bug)
    assert _run(inventory, "internal", *debug, "--cluster", "c001") == 1
    # A breaker that opens needs a 30 s cool-down through the CLI: drive the real one.
    configure_logging(log_format="json", log_file=Path("breaker.jsonl"), level="debug")
    anyio.run(_open_a_breaker)
    names = ["main", "fail-fast", "identity", "interrupted", "resumed", "internal", "breaker"]
    return _lines(*(Path(f"{name}.jsonl") for name in names))


def _runs() -> list[RunRecord]:
    with Ledger.open(Path("state.db")) as ledger:
        return ledger.list_runs()


async def _open_a_breaker() -> None:
    CircuitBreaker(threshold=1, cooldown_s=0.0).record_transport_failure()


def test_every_emitted_event_level_and_field_is_documented_and_every_documented_one_emitted(
    inventory: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    documented = catalogue()
    lines = _representative_logs(inventory, tmp_path, monkeypatch)
    seen_fields: dict[str, set[str]] = defaultdict(set)
    for line in lines:
        event = line["event"]
        assert event in documented, f"undocumented event {event}: {line}"
        entry = documented[event]
        assert line["level"] in entry.levels, f"{event} at {line['level']}, doc says {entry.levels}"
        fields = set(line) - ENVELOPE - BOUND
        assert fields <= entry.fields, f"{event}: undocumented fields {fields - entry.fields}"
        seen_fields[event] |= fields | (set(line) & BOUND)
    never = sorted(set(documented) - set(seen_fields))
    assert never == [], f"documented, never emitted: {never}"
    unseen = {e: sorted(entry.fields - seen_fields[e]) for e, entry in documented.items()}
    assert {e: f for e, f in unseen.items() if f} == {}, "documented fields never emitted"


def test_log_level_option_wins_over_the_environment(
    inventory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--log-level warning` keeps info lines out although the variable says debug; without
    the option the variable applies."""
    monkeypatch.setenv("ONTAP_REKEY_LOG_LEVEL", "debug")
    assert _run(inventory, "warn", "--cluster", "c006", "--log-level", "warning") == 0
    levels = {line["level"] for line in _lines(Path("warn.jsonl"))}
    assert levels == {"warning"}  # cluster.tls_verify_disabled, nothing below it
    argv = [str(inventory), "--yes", "--state", "state.db", "--report-dir", "reports-env"]
    assert main(["run", *argv, "--cluster", "c006", "--log-file", "env.jsonl"]) == 0
    assert "debug" in {line["level"] for line in _lines(Path("env.jsonl"))}


def test_a_bad_log_level_is_a_usage_error(
    inventory: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong option value or variable is exit 2 with one line, before any request."""
    assert _run(inventory, "bad", "--cluster", "c006", "--log-level", "loud") == 2
    assert "--log-level" in capsys.readouterr().err
    monkeypatch.setenv("ONTAP_REKEY_LOG_LEVEL", "loud")
    argv = [str(inventory), "--yes", "--state", "state.db"]
    assert main(["run", *argv, "--cluster", "c006"]) == 2
    err = capsys.readouterr().err
    assert "ONTAP_REKEY_LOG_LEVEL='loud'" in err and "Traceback" not in err
