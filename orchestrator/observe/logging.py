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
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Literal, TextIO, cast

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from orchestrator.observe.redaction import redact_processor, register_secret

__all__ = ["LOG_LEVELS", "configure_logging", "get_logger", "register_secret", "resolve_log_level"]

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
    structlog.configure(
        processors=[*_shared_processors(), *_final_processors(), dispatch],
        logger_factory=structlog.ReturnLoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
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


def _dumps(event_dict: EventDict) -> str:
    # Values are plain after `redact` (str, numbers, None, lists, dicts); `default=str`
    # covers what a foreign record might still carry.
    return json.dumps(event_dict, ensure_ascii=False, default=str)


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
    return _Sink(log_file.open("a", encoding="utf-8"), level, None, owned=True)


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


class _Dispatch:
    """The last processor: render each event once per format and write it to every sink
    whose level it passes. JSON is rendered at most once, however many sinks take it."""

    def __init__(self, sinks: list[_Sink]) -> None:
        self.sinks = sinks

    def __call__(self, _logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        self.emit(_LEVELS.get(method, logging.INFO), event_dict)
        raise structlog.DropEvent  # written: nothing left for the logger to do

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
