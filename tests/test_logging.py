"""structlog set-up: JSON lines, UTC timestamps, context variables, redaction (issue 6)."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from orchestrator.observe import events
from orchestrator.observe.logging import configure_logging, get_logger, register_secret
from orchestrator.observe.redaction import REDACTED
from tests.log_catalogue import catalogue

pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py

ANSI = re.compile(r"\x1b\[")
PASSWORD = "Tr0ub4dor&3-password"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload.signature"


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_one_json_object_per_event_with_required_keys(stream: io.StringIO) -> None:
    """Every event is one JSON line: timestamp, level, event first, then the fields."""
    configure_logging(stream=stream)
    get_logger().info(events.RUN_STARTED, run_id="r1", mode="run", targets=3)
    get_logger().warning(events.DISCOVERY_FAILED, cluster="c1", error_code="401")
    first, second = lines(stream)
    assert list(first)[:3] == ["timestamp", "level", "event"]
    assert first == first | {"level": "info", "event": "run.started", "run_id": "r1", "targets": 3}
    assert second["level"] == "warning"
    assert second["error_code"] == "401"


def test_timestamps_are_iso_8601_utc(stream: io.StringIO) -> None:
    """`timestamp` parses as ISO-8601 and is in UTC (suffix Z)."""
    configure_logging(stream=stream)
    get_logger().info(events.WAVE_STARTED, wave=1, size=10)
    stamp = lines(stream)[0]["timestamp"]
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert parsed.utcoffset() is not None
    assert parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_bound_context_variables_appear_on_every_line(stream: io.StringIO) -> None:
    """What the engine binds per task (run_id, cluster, svm, attempt, wave) is on each line."""
    configure_logging(stream=stream)
    with structlog.contextvars.bound_contextvars(run_id="r1", wave=2):
        with structlog.contextvars.bound_contextvars(cluster="c1", svm="s1", attempt=3):
            get_logger().info(events.ATTEMPT_STARTED, key_id="k")
        get_logger().info(events.WAVE_FINISHED)
    inner, outer = lines(stream)
    assert inner | {"run_id": "r1", "wave": 2, "cluster": "c1", "svm": "s1", "attempt": 3} == inner
    assert outer["run_id"] == "r1"
    assert "cluster" not in outer


def test_level_filters_debug_by_default(stream: io.StringIO) -> None:
    """`job.polled` is a debug event: absent at the default level, present at debug."""
    configure_logging(stream=stream)
    get_logger().debug(events.JOB_POLLED, job_uuid="j")
    assert lines(stream) == []
    configure_logging(stream=stream, level="debug")
    get_logger().debug(events.JOB_POLLED, job_uuid="j")
    assert [line["event"] for line in lines(stream)] == ["job.polled"]


def test_log_file_gets_json_lines(tmp_path: Path, stream: io.StringIO) -> None:
    """--log-file receives JSON lines even when stderr uses the console renderer."""
    log_file = tmp_path / "logs" / "run.jsonl"
    configure_logging(stream=stream, log_format="console", log_file=log_file)
    get_logger().info(events.RUN_FINISHED, exit_code=0)
    record = json.loads(log_file.read_text(encoding="utf-8").strip())
    assert record["event"] == "run.finished"
    assert "run.finished" in stream.getvalue()


def test_redaction_by_key_at_any_depth(stream: io.StringIO) -> None:
    """Values under secret-ish keys are replaced, in nested dicts and lists too."""
    configure_logging(stream=stream)
    get_logger().info(
        "x.y",
        password="p1",
        auth={"username": "admin", "password": "p2", "headers": [{"Authorization": "Basic zz"}]},
        client_key="-----BEGIN PRIVATE KEY-----abc-----END PRIVATE KEY-----",
        api_token="t",
    )
    line = lines(stream)[0]
    assert line["password"] == REDACTED
    assert line["auth"] == {
        "username": "admin",
        "password": REDACTED,
        "headers": [{"Authorization": REDACTED}],
    }
    assert line["client_key"] == REDACTED
    assert line["api_token"] == REDACTED


def test_registered_secret_scrubbed_from_any_string(stream: io.StringIO) -> None:
    """A registered value is scrubbed wherever it slipped in: message, nested, URL-encoded."""
    configure_logging(stream=stream)
    register_secret(PASSWORD)
    get_logger().info(
        f"odd event {PASSWORD}",
        message=f"login with {PASSWORD} failed",
        nested={"deeper": [f"url https://admin:{PASSWORD.replace('&', '%26')}@host"]},
    )
    text = stream.getvalue()
    assert PASSWORD not in text
    assert "Tr0ub4dor" not in text
    assert text.count(REDACTED) == 3


def test_registered_secret_scrubbed_from_exception_text(stream: io.StringIO) -> None:
    """A traceback is rendered to text before redaction, so its secrets are scrubbed too."""
    configure_logging(stream=stream)
    register_secret(PASSWORD)
    try:
        _fail_with(f"connect failed for admin:{PASSWORD}")
    except RuntimeError:
        get_logger().exception("internal.error")
    line = lines(stream)[0]
    assert "RuntimeError: connect failed for admin:[REDACTED]" in line["exception"]
    assert PASSWORD not in stream.getvalue()


def _fail_with(message: str) -> None:
    raise RuntimeError(message)


def _http_traffic(auth: httpx.Auth | tuple[str, str] | None, headers: dict[str, str]) -> None:
    """One request through a MockTransport while the HTTP stack logs at DEBUG.

    The event hook plays a dependency that logs every raw request header at DEBUG (as
    httpcore's trace and third-party debug helpers do).
    """
    wire = logging.getLogger("httpx")

    def log_headers(request: httpx.Request) -> None:
        wire.debug("send_request_headers %r", request.headers.raw)
        wire.debug("headers dict %s", dict(request.headers))

    transport = httpx.MockTransport(lambda request: httpx.Response(200, json={"ok": True}))
    with httpx.Client(transport=transport, auth=auth, headers=headers,
                      event_hooks={"request": [log_headers]}) as client:  # fmt: skip
        client.get("https://east-01.example.com/api/cluster")


def test_http_debug_logs_never_show_basic_credentials(stream: io.StringIO) -> None:
    """At DEBUG, the HTTP stack's lines carry no password and no Basic credential."""
    configure_logging(stream=stream, level="debug")
    register_secret(PASSWORD)
    _http_traffic(("admin", PASSWORD), {})
    text = stream.getvalue()
    credential = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert "send_request_headers" in text  # the debug lines were emitted...
    assert "HTTP Request: GET" in text
    assert PASSWORD not in text  # ...and scrubbed
    assert credential not in text
    assert re.search(r"Basic (?!\[REDACTED\])", text) is None


def test_http_debug_logs_never_show_bearer_token(stream: io.StringIO) -> None:
    """A bearer token is scrubbed even when nobody registered it (header-shaped)."""
    configure_logging(stream=stream, level="debug")
    _http_traffic(None, {"Authorization": f"Bearer {TOKEN}"})
    text = stream.getvalue()
    assert "Bearer [REDACTED]" in text
    assert TOKEN not in text


def test_http_stack_quiet_unless_debug(stream: io.StringIO) -> None:
    """At the default level httpx's per-request INFO lines stay out of the log."""
    configure_logging(stream=stream)
    _http_traffic(("admin", PASSWORD), {})
    assert "HTTP Request" not in stream.getvalue()


@pytest.mark.parametrize("log_format", [None, "json", "console"])
def test_no_ansi_escapes_on_a_non_terminal(stream: io.StringIO, log_format: Any) -> None:
    """Whatever the format, a stream that is not a terminal gets no ANSI escapes."""
    configure_logging(stream=stream, log_format=log_format)
    get_logger().error(events.TARGET_FINISHED, outcome="failed", cluster="c1")
    assert "target.finished" in stream.getvalue()
    assert not ANSI.search(stream.getvalue())


class _FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_console_on_a_terminal_and_no_color_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal gets the console renderer (not JSON); NO_COLOR switches colour off."""
    monkeypatch.setenv("NO_COLOR", "1")
    tty = _FakeTty()
    configure_logging(stream=tty)
    get_logger().info(events.RUN_STARTED, run_id="r1")
    text = tty.getvalue()
    assert not text.startswith("{")
    assert "run.started" in text
    assert not ANSI.search(text)


def test_reconfiguring_replaces_our_handlers_only(stream: io.StringIO) -> None:
    """Calling configure twice does not duplicate lines; foreign handlers survive."""
    foreign = logging.NullHandler()
    logging.getLogger().addHandler(foreign)
    try:
        configure_logging(stream=stream)
        configure_logging(stream=stream)
        get_logger().info(events.RUN_INTERRUPTED)
        assert len(lines(stream)) == 1
        assert foreign in logging.getLogger().handlers
    finally:
        logging.getLogger().removeHandler(foreign)


def test_event_catalogue_documents_every_event() -> None:
    """docs/logging.md has a catalogue row (event, level, fields) for every event constant,
    and no row for an event the code does not define (test_log_catalogue.py checks them
    against a representative run)."""
    rows = catalogue()
    assert sorted(set(events.ALL_EVENTS) - set(rows)) == []
    assert sorted(set(rows) - set(events.ALL_EVENTS)) == []
    assert all(row.levels <= {"debug", "info", "warning", "error"} for row in rows.values())
    assert all(re.fullmatch(r"[a-z_]+\.[a-z_]+", name) for name in events.ALL_EVENTS)


def test_console_lines_leave_out_fields_that_are_none(stream: io.StringIO) -> None:
    """`error_class=None hint=None` is noise on a terminal; JSON lines keep the keys."""
    configure_logging(stream=stream, log_format="console")
    get_logger().info(events.TARGET_FINISHED, outcome="rekeyed", hint=None, error_class=None)
    text = stream.getvalue()
    assert "outcome=rekeyed" in text
    assert "None" not in text and "hint" not in text and "error_class" not in text
