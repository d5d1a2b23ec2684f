"""structlog, configured once: JSON lines (or a console renderer on a terminal), redacted.

Both structlog events and stdlib `logging` records (httpx, httpcore, anyio) go through the
same processors, so the same redaction and the same keys apply to every line:
`timestamp` (ISO-8601 UTC), `level`, `event`, then the context variables the engine binds
(`run_id`, `cluster`, `svm`, `attempt`, `wave`) and the event's own fields (docs/logging.md).

One render per event: the processors (redaction included) run once, the JSON line is built
once and written to every JSON sink (stderr and `--log-file`); a console stderr renders its
own text. structlog events go straight to the sinks, not through stdlib `logging` (a
LogRecord and a formatter chain per handler cost more than the event itself at 100,000
targets); stdlib records from libraries reach the same sinks through one root handler.

A structlog event's processors are one call (`_Pipeline`): the context variables merged, the
level, a timestamp whose date and time are formatted once per second, the tracebacks, the
redaction (`redact_processor`: one look over all of the event's texts for anything it would
replace), the first keys; then one JSON encoding by an encoder built once. The result is
exactly what the processor chain the stdlib records still take (`_shared_processors`,
`_final_processors`) gives: tests/test_logging_fast_path.py holds the two to the same lines.
"""

from __future__ import annotations

import contextvars
import datetime
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from orchestrator.observe.redaction import (
    REDACTED,
    is_secret_key,
    redact,
    redact_processor,
    register_secret,
)

__all__ = [
    "LOG_LEVELS",
    "EventLogger",
    "configure_logging",
    "get_logger",
    "register_secret",
    "resolve_log_level",
]

LogFormat = Literal["json", "console"]
LOG_LEVELS = ("debug", "info", "warning", "error")
LEVEL_ENV = "ONTAP_REKEY_LOG_LEVEL"  # the fallback when no --log-level is given
DEFAULT_LEVEL = "info"

# The HTTP stack logs one line per request at INFO and its wire traffic at DEBUG: only
# worth seeing when the operator asked for debug logs.
HTTP_LOGGERS = ("httpx", "httpcore", "hpack", "h11")
_FIRST_KEYS = ("timestamp", "level", "event")
_OURS = "_ontap_rekey_handler"  # marks our handlers so a reconfiguration replaces only them


def configure_logging(
    *,
    log_format: LogFormat | None = None,
    log_file: Path | None = None,
    level: str = "info",
    stream: TextIO | None = None,
    stream_level: str | None = None,
) -> None:
    """Configure structlog and stdlib logging for the whole process.

    Lines go to `stream` (default: whatever `sys.stderr` is at the time of writing, so a
    rich Live display that redirects stderr shows them above itself) and, as JSON lines
    always, to `log_file`. `log_format=None` picks the console renderer when the stream
    is a terminal and JSON otherwise. Calling it again replaces the previous set-up.
    """
    levels = logging.getLevelNamesMapping()
    numeric = levels[level.upper()]
    sinks = [_stream_sink(log_format, stream, levels[(stream_level or level).upper()])]
    if log_file is not None:
        sinks.append(_file_sink(log_file, numeric))
    dispatch = _Dispatch(sinks)
    pipeline = _Pipeline(dispatch)
    wrapper = structlog.make_filtering_bound_logger(numeric)
    structlog.configure(
        processors=[pipeline],
        logger_factory=structlog.ReturnLoggerFactory(),
        wrapper_class=wrapper,
        cache_logger_on_first_use=False,
    )
    global _route  # noqa: PLW0603 - the one configuration EventLogger may shortcut
    _route = _Route(pipeline, wrapper, numeric)
    _install([_ForeignHandler(dispatch)], numeric)


def resolve_log_level(option: str | None) -> str:
    """`--log-level` wins, else $ONTAP_REKEY_LOG_LEVEL, else info; ValueError when the
    variable holds something else than a level."""
    if option is not None:
        return option
    value = os.environ.get(LEVEL_ENV, "").strip().lower()
    if not value:
        return DEFAULT_LEVEL
    if value not in LOG_LEVELS:
        raise ValueError(f"{LEVEL_ENV}={value!r}: expected one of {', '.join(LOG_LEVELS)}")
    return value


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """A structlog logger; bind context with `structlog.contextvars.bound_contextvars`."""
    return cast(FilteringBoundLogger, structlog.get_logger(name))


class _Route:
    """The structlog configuration `configure_logging` made last, as `EventLogger` checks it."""

    __slots__ = ("level", "pipeline", "wrapper")

    def __init__(self, pipeline: _Pipeline, wrapper: type, level: int) -> None:
        self.pipeline, self.wrapper, self.level = pipeline, wrapper, level


_route: _Route | None = None


class EventLogger:
    """`structlog.get_logger()` for the engine's per-target events, without structlog's
    layers per call (the lazy proxy binds a new logger for every call, which copies its
    context, runs the chain and catches `DropEvent`: ~4 us of an event's ~25).

    While structlog's configuration is the one `configure_logging` made (its one
    processor and its level-filtering class, checked at every call through
    `structlog.get_config()`), an event goes straight into its `_Pipeline`, as the dict
    structlog would have built (the fields, then `event`; our loggers bind no context of
    their own), and is dropped below the configured level as structlog's filtering logger
    drops it. Otherwise (never configured by us, or configured anew since: e.g.
    `structlog.testing.capture_logs`) it goes through `structlog.get_logger()` as before.
    Same lines either way (tests/test_logging_fast_path.py)."""

    __slots__ = ()

    def debug(self, event: str, **fields: Any) -> None:
        _log("debug", logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        _log("info", logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        _log("warning", logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        _log("error", logging.ERROR, event, fields)


def _log(method: str, level: int, event: str, fields: dict[str, Any]) -> None:
    route = _route
    if route is not None:
        config = structlog.get_config()
        processors = config["processors"]  # (capture_logs changes this very list in place)
        ours = len(processors) == 1 and processors[0] is route.pipeline
        if ours and config["wrapper_class"] is route.wrapper:
            if level >= route.level:
                fields["event"] = event
                route.pipeline.dispatch.emit(level, route.pipeline.process(method, fields))
            return
    getattr(structlog.get_logger(), method)(event, **fields)


def _shared_processors() -> list[Processor]:
    """What every line gets, whether it came from structlog or from stdlib logging."""
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def _final_processors() -> list[Processor]:
    # Tracebacks become text *before* redaction so a secret in an exception is scrubbed.
    return [structlog.processors.format_exc_info, redact_processor, _first_keys]


def _install(handlers: list[logging.Handler], level: int) -> None:
    """Replace our previous handlers on the root logger; leave anyone else's alone."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        setattr(handler, _OURS, True)
        root.addHandler(handler)
    root.setLevel(level)
    http_level = level if level <= logging.DEBUG else logging.WARNING
    for name in HTTP_LOGGERS:
        logging.getLogger(name).setLevel(http_level)


# Values are plain after `redact` (str, numbers, None, lists, dicts); `default=str` covers
# what a foreign record might still carry.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


def _c_encoder() -> Callable[[EventDict, int], Sequence[str]] | None:
    """The C encoder `_ENCODER.encode` builds on every call (~2 us of 5 per line), built
    once. No circular-reference bookkeeping (`markers=None`): a redacted value is a fresh
    tree of plain values, and `redact` itself would not return from a circular one."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator in this interpreter
        return None
    enc = _ENCODER
    return cast(
        Callable[[EventDict, int], Sequence[str]],
        make(None, enc.default, json.encoder.encode_basestring, None, enc.key_separator,
             enc.item_separator, enc.sort_keys, enc.skipkeys, enc.allow_nan),
    )  # fmt: skip


_ENCODE = _c_encoder()


def _dumps(event_dict: EventDict) -> str:
    """The JSON line of an event: `json.dumps(event_dict, ensure_ascii=False, default=str)`."""
    if _ENCODE is None:
        return _ENCODER.encode(event_dict)
    return "".join(_ENCODE(event_dict, 0))


_CONTEXT_PREFIX = "structlog_"  # how structlog.contextvars names its variables
_CONTEXT_PREFIX_LEN = len(_CONTEXT_PREFIX)


# Each context variable's key in a line (None: not one of structlog's), looked up by the
# variable itself instead of testing and slicing its name at every event. structlog makes
# one variable per key and keeps it (`structlog.contextvars._CONTEXT_VARS`), so this holds
# a handful of entries; a foreign variable (anyio's, sniffio's) is remembered as None.
_CONTEXT_KEYS: dict[contextvars.ContextVar[Any], str | None] = {}


def _context_key(var: contextvars.ContextVar[Any]) -> str | None:
    name = var.name
    key = name[_CONTEXT_PREFIX_LEN:] if name.startswith(_CONTEXT_PREFIX) else None
    if len(_CONTEXT_KEYS) < _CONTEXT_KEYS_MAX:  # (bounded, should anyone make variables
        _CONTEXT_KEYS[var] = key  # per task: they are looked at by name then)
    return key


_CONTEXT_KEYS_MAX = 1024


def _merge_context(event_dict: EventDict) -> EventDict:
    """`structlog.contextvars.merge_contextvars`: the bound variables the event's own
    fields do not override, in the context's order, an unbound one (`...`) left out."""
    keys = _CONTEXT_KEYS
    for var, value in contextvars.copy_context().items():
        key = keys[var] if var in keys else _context_key(var)
        if key is not None and value is not Ellipsis:
            event_dict.setdefault(key, value)
    return event_dict


_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text


def iso_utc(ns: int) -> str:
    """`datetime.fromtimestamp(ns / 1e9, UTC).isoformat()` with `Z` for `+00:00` (as
    structlog's `TimeStamper(fmt="iso", utc=True)` writes now), microseconds truncated:
    the date and time part is formatted once per second."""
    global _second  # noqa: PLW0603 - one cache of one string; a race only formats it twice
    seconds, fraction = divmod(ns, 1_000_000_000)
    cached_second, text = _second
    if cached_second != seconds:
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
        text = moment.isoformat()[:19]  # YYYY-MM-DDTHH:MM:SS, before the offset
        _second = (seconds, text)
    micro = fraction // 1000
    # isoformat() leaves the fraction out when it is zero.
    return f"{text}.{micro:06d}Z" if micro else f"{text}Z"


def _now_iso() -> str:
    return iso_utc(time.time_ns())


class _Pipeline:
    """The only structlog processor: what `_shared_processors()` and `_final_processors()`
    do to an event, in one call, then the event written (`_Dispatch`)."""

    def __init__(self, dispatch: _Dispatch, now: Callable[[], str] = _now_iso) -> None:
        self.dispatch = dispatch
        self.now = now

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        self.dispatch.emit(_LEVELS.get(method, logging.INFO), self.process(method, event_dict))
        raise structlog.DropEvent  # written: nothing left for the logger to do

    def process(self, method: str, event_dict: EventDict) -> EventDict:
        """The event dict the chain would give: built in its final key order (timestamp,
        level, event, the event's fields, the context's), so nothing is moved later."""
        if "exc_info" in event_dict or "event" not in event_dict:
            return self.chain(method, event_dict)
        ordered: EventDict = dict.fromkeys(_FIRST_KEYS)
        ordered.update(event_dict)
        ordered = _merge_context(ordered)
        ordered["timestamp"] = self.now()
        ordered["level"] = _LEVEL_NAMES.get(method, method)  # add_log_level
        redacted = redact_processor(None, method, ordered)
        # The fast redaction changes the dict in place; a new one means it went value by
        # value, as it does for fields named `_...`: their values are scrubbed here.
        return redacted if redacted is ordered else _internals_redacted(redacted)

    def chain(self, method: str, event_dict: EventDict) -> EventDict:
        """The same, processor by processor (a traceback to render, or no event name)."""
        event_dict = _merge_context(event_dict)
        event_dict["level"] = _LEVEL_NAMES.get(method, method)
        event_dict["timestamp"] = self.now()
        event_dict = structlog.processors.format_exc_info(None, method, event_dict)
        redacted = redact_processor(None, method, event_dict)
        return _internals_redacted(_first_keys(None, method, redacted))


def _internals_redacted(event_dict: EventDict) -> EventDict:
    """Values of fields named `_...` redacted too. The redaction leaves them raw for the
    processors after it (a stdlib record's `_record`); a structlog event has none of
    those, so a `_...` field is the caller's and is rendered: it must not carry a secret."""
    for key, value in event_dict.items():
        if key.startswith("_"):
            event_dict[key] = REDACTED if is_secret_key(key) else redact(value)
    return event_dict


def _console_renderer(*, colors: bool) -> Processor:
    # NO_COLOR (https://no-color.org): any non-empty value disables colour.
    use_colors = colors and not os.environ.get("NO_COLOR")
    render = structlog.dev.ConsoleRenderer(colors=use_colors, pad_event_to=28)

    def without_none(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        # `error_class=None hint=None` on every line is noise to a human; JSON keeps them.
        return str(render(logger, method, {k: v for k, v in event_dict.items() if v is not None}))

    return without_none


def _first_keys(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Put timestamp, level and event first: JSON lines read left to right by humans too."""
    head = {key: event_dict.pop(key) for key in _FIRST_KEYS if key in event_dict}
    return head | dict(event_dict)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or a bare file-like object
        return False


def _stream_sink(log_format: LogFormat | None, stream: TextIO | None, level: int) -> _Sink:
    is_tty = _isatty(stream if stream is not None else sys.stderr)
    fmt = log_format or ("console" if is_tty else "json")
    console = _console_renderer(colors=is_tty) if fmt == "console" else None
    return _Sink(stream, level, console)


def _file_sink(log_file: Path, level: int) -> _Sink:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    return _FileSink(log_file, level)


class _Sink:
    """One destination: a stream (None: the *current* `sys.stderr`) or an open log file.

    Following stderr matters: rich's Live display swaps `sys.stderr` for a proxy that
    prints above the display; binding the original stderr would draw over it instead.
    """

    def __init__(
        self, stream: TextIO | None, level: int, console: Processor | None, *, owned: bool = False
    ) -> None:
        self.stream = stream
        self.level = level
        self.console = console  # None: JSON lines
        self.owned = owned
        self._lock = threading.Lock()  # the ledger's worker thread logs too

    def write(self, line: str) -> None:
        stream = self.stream if self.stream is not None else sys.stderr
        with self._lock:
            stream.write(line + "\n")
            stream.flush()

    def close(self) -> None:
        if self.owned and self.stream is not None:
            self.stream.close()


class _FileSink(_Sink):
    """The log file (JSON lines): each line written whole, in UTF-8, with one system call,
    as a text file's write and flush did, without its encoder and buffer in between."""

    def __init__(self, path: Path, level: int) -> None:
        super().__init__(None, level, None, owned=True)
        self.file = path.open("ab", buffering=0)

    def write(self, line: str) -> None:
        data = memoryview((line + "\n").encode("utf-8"))
        with self._lock:
            while data:  # a regular file takes it all at once, short of a full disk
                data = data[self.file.write(data) :]

    def close(self) -> None:
        self.file.close()


class _Dispatch:
    """Render each event once per format and write it to every sink whose level it passes.
    JSON is rendered at most once, however many sinks take it."""

    def __init__(self, sinks: list[_Sink]) -> None:
        self.sinks = sinks

    def emit(self, level: int, event_dict: EventDict) -> None:
        line: str | None = None
        for sink in self.sinks:
            if level < sink.level:
                continue
            if sink.console is not None:
                sink.write(str(sink.console(None, "", dict(event_dict))))  # it pops keys
                continue
            if line is None:
                line = _dumps(event_dict)
            sink.write(line)


class _ForeignHandler(logging.Handler):
    """stdlib records (httpx, httpcore, anyio) through the same processors and sinks."""

    def __init__(self, dispatch: _Dispatch) -> None:
        super().__init__()
        self.dispatch = dispatch
        self.chain = [
            *_shared_processors(),
            structlog.stdlib.add_logger_name,
            *_final_processors(),
        ]

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event_dict: EventDict = {"event": record.getMessage(), "_record": record}
            if record.exc_info:
                event_dict["exc_info"] = record.exc_info
            method = record.levelname.lower()
            for processor in self.chain:
                event_dict = processor(None, method, event_dict)  # type: ignore[assignment]
            event_dict.pop("_record", None)
            self.dispatch.emit(record.levelno, event_dict)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)

    def close(self) -> None:
        for sink in self.dispatch.sinks:
            sink.close()
        super().close()


_LEVEL_NAMES = {"warn": "warning", "exception": "error"}  # structlog's map_method_name

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}
