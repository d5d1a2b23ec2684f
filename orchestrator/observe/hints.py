"""Remediation hints for error codes: the one place observe asks the policy table.

The table lives in `orchestrator.core.policy` (shared by logs, reports and
docs/errors.md). It is looked up at call time, so reports keep working (with the hint the
ledger recorded, or none) in a checkout where the policy module is not there yet.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import cast

_POLICY_MODULE = "orchestrator.core.policy"


def hint_for(code: str | None, status: int | None = None, *, recorded: str | None = None) -> str:
    """The hint to show for an error: the one the ledger recorded, else the policy's."""
    if recorded:
        return recorded
    lookup = _policy_function("hint_for")
    return str(lookup(code, status)) if lookup is not None else ""


def describe_code(code: str | None) -> str:
    """What an ONTAP error code means, in a few words ("" when unknown)."""
    lookup = _policy_function("describe_code")
    return str(lookup(code)) if lookup is not None and code else ""


def _policy_function(name: str) -> Callable[..., object] | None:
    try:
        module = importlib.import_module(_POLICY_MODULE)
    except ImportError:
        return None
    return cast(Callable[..., object] | None, getattr(module, name, None))
