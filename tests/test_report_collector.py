"""The report phase pauses the cyclic collector and gives it back as it found it."""

from __future__ import annotations

import gc

import pytest

from orchestrator.observe.reports import collector


def _fail_inside() -> None:
    with collector.paused():
        assert not gc.isenabled()
        with collector.paused():  # nested: the outer one resumes
            pass
        assert not gc.isenabled()
        raise RuntimeError


def test_paused_disables_the_collector_and_restores_it_even_on_error() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        _fail_inside()
    assert gc.isenabled()


def test_paused_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
