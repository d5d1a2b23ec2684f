"""structlog, configured once: JSON lines (or a console renderer on a terminal), redacted.

Both structlog events and stdlib `logging` records (httpx, httpcore, anyio) go through one
`ProcessorFormatter`, so the same redaction and the same keys apply to every line:
`timestamp` (ISO-8601 UTC), `level`, `event`, then the context variables the engine binds
(`run_id`, `cluster`, `svm`, `wave`) and the event's own fields (docs/logging.md).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Literal, TextIO, cast

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
    numeric = logging.getLevelNamesMapping()[level.upper()]
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        cache_logger_on_first_use=False,
    )
    handlers = [_stream_handler(shared, log_format, stream)]
    if stream_level is not None:  # e.g. the demo: warnings on the terminal, all in the file
        handlers[0].setLevel(logging.getLevelNamesMapping()[stream_level.upper()])
    if log_file is not None:
        handlers.append(_file_handler(shared, log_file))
    _install(handlers, numeric)


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


def _final_processors(renderer: Processor) -> list[Processor]:
    # Tracebacks become text *before* redaction so a secret in an exception is scrubbed.
    return [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        redact_processor,
        _first_keys,
        renderer,
    ]


def _formatter(shared: list[Processor], renderer: Processor) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=_final_processors(renderer),
    )


def _stream_handler(
    shared: list[Processor], log_format: LogFormat | None, stream: TextIO | None
) -> logging.Handler:
    handler = _StreamHandler(stream)
    is_tty = _isatty(stream if stream is not None else sys.stderr)
    fmt = log_format or ("console" if is_tty else "json")
    renderer = _console_renderer(colors=is_tty) if fmt == "console" else _json_renderer()
    handler.setFormatter(_formatter(shared, renderer))
    return handler


def _file_handler(shared: list[Processor], log_file: Path) -> logging.Handler:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(_formatter(shared, _json_renderer()))
    return handler


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


def _json_renderer() -> Processor:
    return structlog.processors.JSONRenderer(serializer=_dumps)


def _dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, **kwargs)


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


class _StreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that, without an explicit stream, writes to the *current* stderr.

    rich's Live display swaps `sys.stderr` for a proxy that prints above the display;
    binding the original stderr at configuration time would draw over it instead.
    """

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self._follow_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stderr:
            self.stream = sys.stderr
        super().emit(record)
