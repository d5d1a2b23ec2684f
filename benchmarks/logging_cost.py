"""CPU cost of the per-target log events, as `ontap-rekey run --log-file F --log-format json`
emits them (stderr and the file), without any network.

    .venv/bin/python benchmarks/logging_cost.py [--targets 10000] [--console] [--repeat 3]
                                                [--stderr-file]

Per rekeyed target the engine (orchestrator/engine/procedure.py) logs four `info` events,
`attempt.started`, `attempt.submitted`, `target.verified` and `target.finished`, and one
`debug` event (`target.verifying`, filtered out at the default level), with the run's
context bound as the engine binds it: `run_id` for the run (`run_record.run_scope`),
`cluster`, `svm` and `wave` per target (`runner._Rotation.target`). The events go through
the module-level `EventLogger` the engine uses (`--via-structlog`: through a
`structlog.get_logger()` proxy, as the engine logged before; the same lines). Prints CPU microseconds
per target and per `info` event (`time.process_time`), best of `--repeat`. stderr is a
sink that keeps nothing, unless `--stderr-file`: then a file, as `benchmarks/fleet.py`
redirects the run's stderr (one more write system call per line).
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import structlog

from orchestrator.observe import events
from orchestrator.observe.logging import EventLogger, configure_logging, register_secret

INFO_EVENTS_PER_TARGET = 4
log: Any = EventLogger()  # as every engine module holds it


class _Devnull(io.StringIO):
    """A stderr that keeps nothing (what a redirected stderr costs is not the point)."""

    def write(self, text: str) -> int:
        return len(text)


def emit(targets: int) -> None:
    """The events of `targets` rekeyed targets, each with the engine's arguments."""
    with structlog.contextvars.bound_contextvars(run_id="20261201-090213-b465"):
        for i in range(targets):
            key_before, key_after = str(uuid.UUID(int=i)), str(uuid.UUID(int=i + 1))
            job_uuid = str(uuid.UUID(int=i + 2))
            with structlog.contextvars.bound_contextvars(
                cluster=f"c{i % 250:03d}", svm=f"svm{i % 40:02d}", wave=3
            ):
                log.info(events.ATTEMPT_STARTED, attempt=1, key_id=key_after)
                log.info(events.ATTEMPT_SUBMITTED, job_uuid=job_uuid, status=202)
                log.debug(events.TARGET_VERIFYING)
                log.info(events.TARGET_VERIFIED, key_id=key_after)
                log.info(
                    events.TARGET_FINISHED, outcome="rekeyed", outcome_reason=None, attempts=1,
                    duration_s=2.013, error_code=None, error_class=None, hint=None,
                    job_uuid=job_uuid, key_id_before=key_before, key_id_after=key_after,
                )  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--targets", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--console", action="store_true", help="console format on stderr")
    p.add_argument("--stderr-file", action="store_true", help="stderr to a file, not nowhere")
    p.add_argument("--via-structlog", action="store_true", help="a structlog.get_logger() proxy")
    args = p.parse_args()
    if args.via_structlog:
        global log  # noqa: PLW0603 - the benchmark's one switch
        log = structlog.get_logger()
    register_secret("netapp-sim")  # a run always has secrets registered
    with tempfile.TemporaryDirectory() as tmp:
        best = float("inf")
        for i in range(args.repeat):
            stream = (Path(tmp) / f"run{i}.err").open("w") if args.stderr_file else _Devnull()
            configure_logging(
                log_format="console" if args.console else "json",
                log_file=Path(tmp) / "run.log.jsonl",
                stream=stream,
            )
            started = time.process_time()
            emit(args.targets)
            best = min(best, time.process_time() - started)
            stream.close()
        lines = (Path(tmp) / "run.log.jsonl").read_text().count("\n")
    per_target = 1e6 * best / args.targets
    print(f"targets={args.targets} lines_in_file={lines} us_per_target={per_target:.1f} "
          f"us_per_event={per_target / INFO_EVENTS_PER_TARGET:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
