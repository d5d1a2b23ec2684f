"""Shared test configuration."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from orchestrator.observe.redaction import clear_secrets


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio (the backend the command line uses)."""
    return "asyncio"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """A test that configures logging leaves the process as it found it: our handlers
    removed, structlog's defaults and context back, no registered secret."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_ontap_rekey_handler", False)]:
        root.removeHandler(handler)
        handler.close()
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    clear_secrets()
