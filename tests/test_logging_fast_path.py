"""The per-event fast path of logging (issue 16) gives the very lines the processor chain gave.

`_Pipeline.process` (one call: context, level, timestamp, redaction, key order) and
`redact_processor` (one look over all of an event's texts) are held to the processor chain
as it was (`merge_contextvars`, `add_log_level`, the timestamper, `format_exc_info`, the
value-by-value `redact_processor_reference`, `_first_keys`, `json.dumps`), for events with
secrets, secret-named keys, credential headers, PEM blocks, non-ASCII, NUL and nested values.
"""

from __future__ import annotations

import contextvars
import datetime
import io
import json
import logging
import re
from typing import Any, cast
from unittest.mock import patch

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from structlog.typing import EventDict, Processor

from orchestrator.observe import events, redaction
from orchestrator.observe import logging as ours
from orchestrator.observe.logging import configure_logging, iso_utc, register_secret
from orchestrator.observe.redaction import clear_secrets

pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py

STAMP = "2026-12-01T09:02:13.000123Z"
SECRETS = ["netapp-sim", "Tr0ub4dor&3", "pässwörd", "a b+c/d=="]
FIELD_NAMES = [
    "attempt", "key_id", "job_uuid", "status", "outcome", "hint", "cause", "message",
    "password", "api_token", "Authorization", "x-api_key", "client_key", "credentials",
    "level", "timestamp", "event", "cluster", "svm", "run_id", "exception", "_record",
]  # fmt: skip
METHODS = ["debug", "info", "warning", "warn", "error", "exception", "critical", "msg"]


def reference_line(method: str, event_dict: EventDict, timestamp: str) -> str:
    """The line as the processor chain rendered it before the fast path."""

    def stamp(_logger: Any, _method: str, ed: EventDict) -> EventDict:
        ed["timestamp"] = timestamp  # the TimeStamper's key and place, a fixed value
        return ed

    chain: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        stamp,
        structlog.processors.format_exc_info,
        redaction.redact_processor_reference,
        ours._first_keys,
    ]
    # Every text through every rule, as before the look for literals (`scrub_text`).
    with patch.object(redaction, "scrub_text", redaction.scrub_text_reference):
        for processor in chain:
            event_dict = cast(EventDict, processor(None, method, event_dict))
    # The one change on purpose: a field named `_...` was rendered raw (the redaction keeps
    # internals such as a stdlib record's `_record` raw for later processors).
    event_dict = {
        key: redaction.redact(value) if key.startswith("_") and not redaction.is_secret_key(key)
        else redaction.REDACTED if key.startswith("_") else value
        for key, value in event_dict.items()
    }  # fmt: skip
    return json.dumps(event_dict, ensure_ascii=False, default=str)


def fast_line(method: str, event_dict: EventDict, timestamp: str) -> str:
    pipeline = ours._Pipeline(ours._Dispatch([]), now=lambda: timestamp)
    return ours._dumps(pipeline.process(method, event_dict))


# -- strategies --------------------------------------------------------------------------------

_pieces = st.sampled_from(
    [*SECRETS, "Basic dXNlcjpwYXNz", "Bearer eyJhbGciOi.x.y", "Digest ", "\x00", "\n", "\\",
     '"', "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----",
     "-----BEGIN PRIVATE KEY-----", "netapp", "b64:bmV0YXBwLXNpbQ==", "netapp%2Dsim", "é",
     "\u2028", "🔑", "c001", "svm01"]
)  # fmt: skip
texts = st.one_of(
    st.text(max_size=20),
    st.lists(st.one_of(_pieces, st.text(max_size=6)), max_size=5).map("".join),
)
scalars = st.one_of(
    texts,
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), inner,
                        max_size=3),
        st.tuples(inner, inner),
    ),
    max_leaves=6,
)  # fmt: skip
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(min_size=1, max_size=10))
fields = st.dictionaries(keys.filter(lambda k: k != "event"), values, max_size=8)
context = st.dictionaries(st.sampled_from([*FIELD_NAMES, "wave", "reason"]), scalars, max_size=5)
event_names = st.one_of(st.sampled_from(sorted(events.ALL_EVENTS)), texts)


def _bind(bound: dict[str, Any], unbound: list[str]) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**bound)
    structlog.contextvars.unbind_contextvars(*unbound)  # left as `...`: not rendered


# -- the tests ---------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    method=st.sampled_from(METHODS),
    event=event_names,
    kwargs=fields,
    bound=context,
    unbound=st.lists(st.sampled_from(["cluster", "svm", "hint"]), max_size=2),
    secrets=st.lists(st.sampled_from(SECRETS), max_size=3),
)
def test_fast_line_equals_the_processor_chain_line(
    method: str,
    event: str,
    kwargs: dict[str, Any],
    bound: dict[str, Any],
    unbound: list[str],
    secrets: list[str],
) -> None:
    """Any event (secrets, secret keys, headers, PEM, non-ASCII, nesting, bound context):
    byte for byte the line of the processor chain, and no registered secret in it."""
    clear_secrets()
    for secret in secrets:
        register_secret(secret)
    try:
        _bind(bound, [key for key in unbound if key not in bound])
        fast = fast_line(method, {**kwargs, "event": event}, STAMP)
        reference = reference_line(method, {**kwargs, "event": event}, STAMP)
    finally:
        structlog.contextvars.clear_contextvars()
    assert fast == reference
    assert not any(secret in fast for secret in secrets)


@settings(max_examples=200, deadline=None)
@given(kwargs=fields, many=st.booleans())
def test_fast_redaction_equals_value_by_value_redaction(kwargs: dict[str, Any], many: bool) -> None:
    """`redact_processor` == `redact_processor_reference` (same items, same order), with a
    few secrets (looked for one by one) or more than `_LITERALS_AT_MOST` (one regex)."""
    clear_secrets()
    for secret in SECRETS:
        register_secret(secret)
    if many:
        for i in range(redaction._LITERALS_AT_MOST):
            register_secret(f"other-secret-{i}")
    assert (redaction._lookout[1] is not None) is many
    fast = redaction.redact_processor(None, "info", dict(kwargs))
    reference = redaction.redact_processor_reference(None, "info", dict(kwargs))
    assert json.dumps(list(fast.items()), default=str) == json.dumps(
        list(reference.items()), default=str
    )


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(texts, max_size=6), secrets=st.lists(st.sampled_from(SECRETS), max_size=3))
def test_the_look_misses_nothing_scrub_text_would_change(
    texts: list[str], secrets: list[str]
) -> None:
    """Whenever `scrub_text` changes one of the texts, `may_need_scrubbing` says so."""
    clear_secrets()
    for secret in secrets:
        register_secret(secret)
    if any(redaction.scrub_text(text) != text for text in texts):
        assert redaction.may_need_scrubbing(texts)


@settings(max_examples=300, deadline=None)
@given(text=texts, many=st.booleans())
def test_scrub_text_equals_every_rule_applied(text: str, many: bool) -> None:
    """`scrub_text` (a look for literals first) == the three substitutions, always run."""
    clear_secrets()
    for secret in SECRETS:
        register_secret(secret)
    for i in range(redaction._LITERALS_AT_MOST if many else 0):
        register_secret(f"other-secret-{i}")
    assert redaction.scrub_text(text) == redaction.scrub_text_reference(text)


def test_a_usual_event_takes_the_fast_path_and_a_secret_the_exact_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The per-target events are not redacted value by value (that is the saving), an event
    holding a registered secret is, and its line has the secret scrubbed."""
    calls: list[str] = []
    real = redaction.redact_processor_reference

    def counting(logger: Any, method: str, event_dict: EventDict) -> EventDict:
        calls.append(str(event_dict.get("event")))
        return real(logger, method, event_dict)

    monkeypatch.setattr(redaction, "redact_processor_reference", counting)
    register_secret("netapp-sim")
    stream = io.StringIO()
    configure_logging(stream=stream, log_format="json")
    log = structlog.get_logger()
    with structlog.contextvars.bound_contextvars(run_id="r1", cluster="c001", svm="svm01"):
        log.info(events.ATTEMPT_SUBMITTED, job_uuid="j-1", status=202)
        log.warning(events.ATTEMPT_UNCERTAIN, cause="login admin:netapp-sim refused")
    assert calls == [events.ATTEMPT_UNCERTAIN]
    assert "netapp-sim" not in stream.getvalue()
    assert "login admin:[REDACTED] refused" in stream.getvalue()


def test_the_per_target_events_through_structlog_equal_the_chain(tmp_path: Any) -> None:
    """End to end: the four `info` events of a rekeyed target, as the engine logs them with
    its bound context, are the chain's lines (each compared at its own timestamp)."""
    register_secret("netapp-sim")
    log_file = tmp_path / "run.jsonl"
    configure_logging(stream=io.StringIO(), log_format="json", log_file=log_file)
    log = structlog.get_logger()
    calls: list[tuple[str, dict[str, Any]]] = [
        (events.ATTEMPT_STARTED, {"attempt": 1, "key_id": "k-2"}),
        (events.ATTEMPT_SUBMITTED, {"job_uuid": "j-1", "status": 202}),
        (events.TARGET_VERIFIED, {"key_id": "k-2"}),
        (events.TARGET_FINISHED, {"outcome": "rekeyed", "outcome_reason": None, "attempts": 1,
                                  "duration_s": 2.013, "error_code": None, "hint": None,
                                  "key_id_before": "k-1", "key_id_after": "k-2"}),
    ]  # fmt: skip
    with (
        structlog.contextvars.bound_contextvars(run_id="20261201-090213-b465"),
        structlog.contextvars.bound_contextvars(cluster="c001", svm="svm01", wave=3),
    ):
        for event, kwargs in calls:
            log.info(event, **kwargs)
        written = log_file.read_text(encoding="utf-8").splitlines()
        expected = [
            reference_line("info", {**kwargs, "event": event}, json.loads(line)["timestamp"])
            for (event, kwargs), line in zip(calls, written, strict=True)
        ]
    assert written == expected


def test_the_log_file_holds_the_stderr_line_in_utf8(tmp_path: Any) -> None:
    """The file (written as bytes) gets the very line stderr gets, non-ASCII and escapes
    included, one line per event."""
    stream = io.StringIO()
    log_file = tmp_path / "run.jsonl"
    configure_logging(stream=stream, log_format="json", log_file=log_file)
    structlog.get_logger().info("x.y", note='clé 🔑 \u2028 "q"\nnext', n=1)
    structlog.get_logger().info("x.z")
    assert log_file.read_bytes() == stream.getvalue().encode("utf-8")
    assert log_file.read_text(encoding="utf-8").count("\n") == 2  # (U+2028 is no line end)
    assert json.loads(stream.getvalue().split("\n")[0])["note"] == 'clé 🔑 \u2028 "q"\nnext'


ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")


@given(st.integers(min_value=0, max_value=(2**33) * 10**9))
def test_iso_utc_is_datetime_isoformat_in_utc(ns: int) -> None:
    """Cached per second, the text is still `datetime.isoformat()` (what structlog's
    `TimeStamper(fmt="iso", utc=True)` writes), the fraction left out when it is zero."""
    seconds, micro = ns // 10**9, ns % 10**9 // 1000
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(microsecond=micro)
    assert iso_utc(ns) == moment.isoformat().replace("+00:00", "Z")
    assert iso_utc(ns - ns % 10**9) == moment.replace(microsecond=0).isoformat()[:19] + "Z"


def test_the_timestamp_has_the_timestampers_format_and_clock() -> None:
    """Our clock reads the same time as structlog's timestamper, in the same format."""
    before = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})["timestamp"]
    ours_now = ours._now_iso()
    after = structlog.processors.TimeStamper(fmt="iso", utc=True)(None, "info", {})["timestamp"]
    assert ISO.fullmatch(before) and ISO.fullmatch(ours_now)

    def parse(text: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))

    assert parse(before) <= parse(ours_now) <= parse(after)


def test_secret_key_answers_are_kept_and_bounded() -> None:
    """`is_secret_key` answers the same from its cache, and the cache stops growing."""
    for key in ["password", "svm", "x_token", "cluster", "Authorization", "tokens"]:
        first = redaction.is_secret_key(key)
        assert redaction.is_secret_key(key) is first
        assert first == (redaction._SECRET_KEY.search(key) is not None)
    for i in range(redaction._KEYS_CACHED + 10):
        assert not redaction.is_secret_key(f"field_{i}")
    assert len(redaction._secret_keys) <= redaction._KEYS_CACHED
    assert redaction.is_secret_key("never_seen_before_password")


# -- the engine's logger (EventLogger): structlog's lines without structlog's layers --------

ENGINE_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("info", events.ATTEMPT_STARTED, {"attempt": 1, "key_id": "k-2"}),
    ("debug", events.TARGET_VERIFYING, {}),
    ("info", events.ATTEMPT_SUBMITTED, {"job_uuid": "j-1", "status": 202}),
    ("warning", events.ATTEMPT_UNCERTAIN, {"cause": "login admin:netapp-sim refused"}),
    ("error", "x.y", {"password": "p", "nested": {"api_token": "t", "n": [1, "netapp-sim"]}}),
    ("info", "x.z", {"_internal": "netapp-sim", "svm": "own", "note": "clé \u2028"}),
    ("error", "x.exc", {"exc_info": ValueError("boom netapp-sim")}),
]


def _engine_lines(tmp_path: Any, name: str, logger: Any, level: str = "info") -> tuple[str, bytes]:
    """What `logger` writes to stderr and the log file for ENGINE_CALLS, at a fixed time."""
    stream, log_file = io.StringIO(), tmp_path / f"{name}.jsonl"
    configure_logging(stream=stream, log_format="json", log_file=log_file, level=level)
    assert ours._route is not None
    ours._route.pipeline.now = lambda: STAMP  # the one structlog's chain holds too
    with (
        structlog.contextvars.bound_contextvars(run_id="20261201-090213-b465"),
        structlog.contextvars.bound_contextvars(cluster="c001", svm="svm01", wave=3),
    ):
        for method, event, kwargs in ENGINE_CALLS:
            getattr(logger, method)(event, **dict(kwargs))
    return stream.getvalue(), log_file.read_bytes()


@pytest.mark.parametrize("level", ["debug", "info", "warning"])
def test_the_event_logger_writes_the_bytes_structlog_writes(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, level: str
) -> None:
    """The engine's `EventLogger` and `structlog.get_logger()` write the same bytes to
    stderr and the log file for the same calls (bound context, secrets, `_` fields, a
    traceback, non-ASCII), and drop the same events below the level; the EventLogger
    without going through structlog's loggers at all."""
    register_secret("netapp-sim")
    expected = _engine_lines(tmp_path, "structlog", structlog.get_logger(), level)

    def no_structlog_logger(*args: Any) -> Any:
        raise AssertionError("the fast path went through structlog.get_logger()")

    monkeypatch.setattr(structlog, "get_logger", no_structlog_logger)
    assert _engine_lines(tmp_path, "engine", ours.EventLogger(), level) == expected
    wanted = {"debug": 7, "info": 6, "warning": 3}[level]
    assert expected[0].count("\n") == wanted
    assert "netapp-sim" not in expected[0]


def test_the_event_logger_follows_a_configuration_made_since(tmp_path: Any) -> None:
    """structlog configured anew after `configure_logging` (capture_logs, another level)
    gets the engine's events through structlog; the fast path resumes once our
    configuration is back."""
    stream = io.StringIO()
    configure_logging(stream=stream, log_format="json")
    log = ours.EventLogger()
    with structlog.testing.capture_logs() as captured:
        log.info(events.ATTEMPT_STARTED, attempt=1)
        log.debug(events.TARGET_VERIFYING)  # below the level structlog still filters at
    assert captured == [{"event": events.ATTEMPT_STARTED, "attempt": 1, "log_level": "info"}]
    assert stream.getvalue() == ""
    log.info(events.TARGET_VERIFIED, key_id="k-2")
    assert json.loads(stream.getvalue())["event"] == events.TARGET_VERIFIED
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    log.info(events.TARGET_FINISHED)  # below the level structlog filters at now
    assert len(stream.getvalue().splitlines()) == 1


def test_the_event_logger_without_our_configuration_is_structlogs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Never configured by us (structlog's defaults): the events are structlog's own."""
    ours._route = None
    ours.EventLogger().info("x.y", n=1)
    assert "x.y" in capsys.readouterr().out  # structlog's default logger prints to stdout


_FOREIGN = contextvars.ContextVar("not_structlogs", default="x")


def test_the_context_merged_equals_structlogs_merge_contextvars() -> None:
    """`_merge_context` (variables looked up by identity, remembered) gives what
    `merge_contextvars` gives: its variables in the context's order, an event field
    winning over a bound one, unbound (reset) ones and foreign variables left out; the
    same again once each variable is remembered."""
    _FOREIGN.set("foreign")
    outer = structlog.contextvars.bind_contextvars(run_id="r1", cluster="c1", gone="soon")
    structlog.contextvars.bind_contextvars(svm="s1", wave=2)
    structlog.contextvars.unbind_contextvars("gone")
    try:
        for _ in range(2):
            event = {"event": "e", "cluster": "mine", "attempt": 1}
            want = structlog.contextvars.merge_contextvars(None, "info", dict(event))
            got = ours._merge_context(dict(event))
            assert list(got.items()) == list(want.items())
            assert "gone" not in got and "not_structlogs" not in got and got["cluster"] == "mine"
    finally:
        structlog.contextvars.reset_contextvars(**outer)
        structlog.contextvars.unbind_contextvars("svm", "wave")
