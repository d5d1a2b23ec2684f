"""The pure core: data types and decisions, no I/O.

Nothing under `orchestrator.core` may import httpx, anyio, structlog, yaml, sqlite3, rich,
click or any other `orchestrator` layer; `tests/test_architecture.py` enforces it.
"""
