"""`--rekey external|internal` on plan and run (issue 15): the command line wins over the
inventory's `defaults: {rekey: ...}`, which wins over the built-in `external`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.cli import main
from orchestrator.commands.run import options_from_flags
from orchestrator.core.inventory import RunDefaults
from orchestrator.core.options import RunOptions
from orchestrator.core.providers import Operation

FLAGS: dict[str, Any] = {
    "concurrency": None,
    "per_cluster": None,
    "waves": None,
    "max_fail_percent": None,
    "fail_fast": None,
    "return_timeout": None,
    "request_timeout": None,
    "discovery_timeout": None,
    "deadline": None,
    "emergency": False,
    "reason": None,
}


@pytest.mark.parametrize("command", ["plan", "run"])
def test_plan_and_run_offer_rekey(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`--help` of plan and run shows --rekey with both choices."""
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert "--rekey [external|internal]" in out


def test_an_unknown_rotation_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """`--rekey both` exits 2 before anything is read or contacted."""
    assert main(["run", "no-such-inventory.yaml", "--rekey", "both"]) == 2
    assert "both" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "inventory", "expected"),
    [
        (None, None, Operation.EXTERNAL),
        (None, Operation.INTERNAL, Operation.INTERNAL),
        ("external", Operation.INTERNAL, Operation.EXTERNAL),
        ("internal", None, Operation.INTERNAL),
    ],
)
def test_the_command_line_wins_then_the_inventory(
    flag: str | None, inventory: Operation | None, expected: Operation
) -> None:
    """--rekey, else defaults: rekey, else external; emergencies take the same path."""
    for emergency in (False, True):
        kw = FLAGS | {"rekey": flag, "emergency": emergency}
        options = options_from_flags(kw, RunDefaults(rekey=inventory))
        assert options.rekey is expected


def test_the_rotation_survives_the_ledger_round_trip() -> None:
    """RunOptions stored as JSON (for resume) come back with the same Operation."""
    options = RunOptions(rekey=Operation.INTERNAL)
    again = RunOptions.from_json(json.loads(json.dumps(options.to_json())))
    assert again.rekey is Operation.INTERNAL


def test_stored_options_with_an_unknown_key_are_refused_naming_it() -> None:
    """A run read back with a knob this release does not know is an error (issue 14)."""
    stored = RunOptions().to_json()
    assert RunOptions.from_json(stored) == RunOptions()
    with pytest.raises(ValueError, match="unknown run option 'turbo'"):
        RunOptions.from_json(stored | {"turbo": True})
    # the TLS flag and a plan's estimate are record fields now (ledger migration 5), not
    # options: inside the options they are unknown keys like any other
    with pytest.raises(ValueError, match="unknown run option 'tls_verify_disabled'"):
        RunOptions.from_json(stored | {"tls_verify_disabled": ["c1"]})
