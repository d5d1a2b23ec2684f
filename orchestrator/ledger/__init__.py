"""The durable ledger: an SQLite database holding every run, target and transition.

`Ledger` is the synchronous store (`store.py`, schema and migrations in `schema.py`, the
run lock in `lock.py`); `AsyncLedger` gives the anyio engine committed, group-committed
writes; `history.py` answers "when was each target last rotated". See docs/ledger.md.
"""

from orchestrator.ledger.async_ledger import AsyncLedger
from orchestrator.ledger.lock import LockHolder
from orchestrator.ledger.store import Ledger, Rotation

DEFAULT_STATE = "ontap-rekey.db"
"""The ledger file when `--state` is left out: every command's default, and what the
suggested next commands leave out again."""

__all__ = ["DEFAULT_STATE", "AsyncLedger", "Ledger", "LockHolder", "Rotation"]
