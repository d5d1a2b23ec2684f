"""`history --format prometheus`: node_exporter textfile metrics, written atomically.

The textfile collector reads every `*.prom` file of its folder at each scrape; a file
caught half-written would be dropped with an error, so the file is written next to its
final name and renamed over it (a rename within one folder is atomic on POSIX).

Metrics (gauges):

- `ontap_rekey_last_rotation_timestamp_seconds{cluster,svm,operation}`: unix time of the
  target's last confirmed rotation of that operation (`external`, `internal`: one line
  each); 0 for a target never rotated (`svm="*"` stands for a
  `svms: all` cluster not discovered yet), so `time() - metric > 90 * 86400` alerts on
  those too.
- `ontap_rekey_overdue_targets{operation}`: targets whose `history --rekey` operation
  is older than `--older-than` plus targets never rotated (without `--older-than`: the
  never rotated ones).
- `ontap_rekey_targets{status}`: targets per status (ok, overdue, never_rotated).
- `ontap_rekey_history_generated_timestamp_seconds`: when the file was written, to alert
  on a cron job that stopped.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from orchestrator.core.providers import Operation
from orchestrator.ledger.history import History, RotationStatus

PREFIX = "ontap_rekey_"
FILE_MODE = 0o644  # node_exporter usually runs as another user


def prometheus_text(history: History) -> str:
    """The whole exposition text, HELP and TYPE lines included, ending in a newline."""
    lines = _gauge(
        "last_rotation_timestamp_seconds",
        "Unix time of the last confirmed rotation of the target (0: never rotated).",
    )
    for entry in history.entries:
        for operation in Operation:
            rotation = entry.last(operation)
            at = rotation.at if rotation is not None else 0.0
            labels = (
                f'cluster="{_escape(entry.key.cluster)}",svm="{_escape(entry.key.svm)}",'
                f'operation="{operation.value}"'
            )
            lines.append(f"{PREFIX}last_rotation_timestamp_seconds{{{labels}}} {_number(at)}")
    judged = f'operation="{history.operation.value}"'
    overdue = history.count(RotationStatus.OVERDUE) + history.count(RotationStatus.NEVER_ROTATED)
    lines += _gauge(
        "overdue_targets", "Targets last rotated longer ago than --older-than, or never."
    )
    lines.append(f"{PREFIX}overdue_targets{{{judged}}} {overdue}")
    lines += _gauge("targets", "Targets of the history by rotation status.")
    lines += [
        f'{PREFIX}targets{{status="{status.value}",{judged}}} {history.count(status)}'
        for status in RotationStatus
    ]
    lines += _gauge("history_generated_timestamp_seconds", "When this file was written.")
    lines.append(f"{PREFIX}history_generated_timestamp_seconds {_number(history.generated_at)}")
    return "\n".join(lines) + "\n"


def _gauge(name: str, help_text: str) -> list[str]:
    return [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} gauge"]


def _escape(value: str) -> str:
    """A label value per the exposition format: backslash, double quote and newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".") if value else "0"


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to a temp file in `path`'s folder, then rename it over `path`."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            os.fchmod(handle.fileno(), FILE_MODE)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
