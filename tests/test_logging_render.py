"""One render per event (issue 16): the processors and the JSON rendering run once per event,
whatever the number of sinks; each sink still gets only the levels it asked for."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from orchestrator.observe import events
from orchestrator.observe import logging as ours
from orchestrator.observe.logging import configure_logging, get_logger

pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


def test_json_on_stderr_and_in_the_file_is_rendered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two JSON sinks, one event: one JSON render, one redaction pass, two equal lines."""
    calls = {"dumps": 0, "redact": 0}
    real_dumps, real_redact = ours._dumps, ours.redact_processor

    def counting_dumps(*args: Any, **kwargs: Any) -> str:
        calls["dumps"] += 1
        return real_dumps(*args, **kwargs)

    def counting_redact(*args: Any) -> Any:
        calls["redact"] += 1
        return real_redact(*args)

    monkeypatch.setattr(ours, "_dumps", counting_dumps)
    monkeypatch.setattr(ours, "redact_processor", counting_redact)
    stream = io.StringIO()
    log_file = tmp_path / "run.jsonl"
    configure_logging(stream=stream, log_format="json", log_file=log_file)
    get_logger().info(events.TARGET_FINISHED, outcome="rekeyed", cluster="c1", svm="s1")
    assert calls == {"dumps": 1, "redact": 1}
    on_stderr = stream.getvalue().strip()
    assert on_stderr == log_file.read_text(encoding="utf-8").strip()
    assert json.loads(on_stderr)["event"] == "target.finished"


def test_the_stream_threshold_filters_stderr_only(tmp_path: Path) -> None:
    """`stream_level` (the demo's): warnings on stderr, everything in the file."""
    stream = io.StringIO()
    log_file = tmp_path / "run.jsonl"
    configure_logging(stream=stream, log_format="json", log_file=log_file, stream_level="warning")
    get_logger().info(events.WAVE_STARTED, wave=1, size=3)
    get_logger().warning(events.RUN_INTERRUPTED, signal=2)
    in_file = [json.loads(line)["event"] for line in log_file.read_text().splitlines()]
    on_stderr = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert in_file == ["wave.started", "run.interrupted"]
    assert on_stderr == ["run.interrupted"]


def test_library_records_reach_the_same_sinks_redacted(tmp_path: Path) -> None:
    """A stdlib record (here at WARNING from a library logger) is one JSON line in both
    sinks, with the logger's name and secrets scrubbed."""
    stream = io.StringIO()
    log_file = tmp_path / "run.jsonl"
    configure_logging(stream=stream, log_format="json", log_file=log_file)
    logging.getLogger("somelib").warning("token %s", "Bearer abcdefghijklmnop")
    line = json.loads(stream.getvalue())
    assert line == json.loads(log_file.read_text())
    assert line["logger"] == "somelib"
    assert line["level"] == "warning"
    assert line["event"] == "token Bearer [REDACTED]"
