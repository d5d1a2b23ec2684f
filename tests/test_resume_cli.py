"""`resume` reads the stored options strictly (issue 14)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.core.options import RunOptions
from orchestrator.ledger.records import RunMode, RunRecord
from orchestrator.ledger.store import Ledger


def test_resume_refuses_a_run_whose_stored_options_hold_an_unknown_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.db"
    with Ledger.open(state) as ledger:
        record = RunRecord(
            run_id=ledger.new_run_id(),
            mode=RunMode.RUN,
            inventory_path=str(tmp_path / "inv.yaml"),
            inventory_sha256="0" * 64,
            options=RunOptions().to_json() | {"turbo": True},
            operator="me@here",
            started_at=time.time(),
        )
        ledger.create_run(record)
    code = main(["resume", record.run_id, "--state", str(state), "--report-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        f"error: run {record.run_id}: unknown run option 'turbo' in the stored run; "
        "resume it with the release that started it"
    ]
