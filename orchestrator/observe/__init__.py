"""Observability: structured logs, live progress, the end-of-run recap and the reports.

Everything here reads the ledger's rows (`orchestrator.ledger.records`) or receives calls
from the engine; nothing here decides anything about a rotation.
"""
