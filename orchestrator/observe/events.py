"""The stable, dotted names of every log event the engine emits (see docs/logging.md).

Log pipelines and the ledger's transitions key on these strings: renaming one is a
breaking change, so they live here as constants rather than as literals at call sites.
"""

from __future__ import annotations

from typing import Final

# The run as a whole.
RUN_STARTED: Final = "run.started"
RUN_FINISHED: Final = "run.finished"
RUN_ABORTED: Final = "run.aborted"
RUN_INTERRUPTED: Final = "run.interrupted"
# An overlapped run (`run --yes`, one wave): every cluster discovered, with the counts a
# plan-first run's `run.started` carries; `resume` discovering the clusters it left.
RUN_DISCOVERED: Final = "run.discovered"
RUN_RESUME_DISCOVERY: Final = "run.resume_discovery"

# Waves (canary, then percentages of the rest).
WAVE_STARTED: Final = "wave.started"
WAVE_FINISHED: Final = "wave.finished"

# Discovery and per-cluster health.
DISCOVERY_STARTED: Final = "discovery.started"
DISCOVERY_FINISHED: Final = "discovery.finished"
DISCOVERY_FAILED: Final = "discovery.failed"
CLUSTER_CIRCUIT_OPENED: Final = "cluster.circuit_opened"
CLUSTER_AUTH_FAILED: Final = "cluster.auth_failed"

CLUSTER_TLS_VERIFY_DISABLED: Final = "cluster.tls_verify_disabled"
CLUSTER_IDENTITY_MISMATCH: Final = "cluster.identity_mismatch"
CLUSTER_NAME_MISMATCH: Final = "cluster.name_mismatch"

# One attempt at rekeying one target.
ATTEMPT_STARTED: Final = "attempt.started"
ATTEMPT_SUBMITTED: Final = "attempt.submitted"
ATTEMPT_RETRY_SCHEDULED: Final = "attempt.retry_scheduled"
ATTEMPT_UNCERTAIN: Final = "attempt.uncertain"
ATTEMPT_SETTLED: Final = "attempt.settled"
JOB_POLLED: Final = "job.polled"
JOB_DESCRIPTIONS_CALIBRATED: Final = "cluster.jobs_calibrated"  # learnt from a known job

# A target's end: exactly one `target.finished` per target of a run.
TARGET_VERIFYING: Final = "target.verifying"  # the job succeeded; reading it back
TARGET_VERIFIED: Final = "target.verified"  # the read-back confirmed the intended key id
TARGET_FINISHED: Final = "target.finished"

# The command line's last line of defence (exit 1).
INTERNAL_ERROR: Final = "internal.error"

ALL_EVENTS: Final[frozenset[str]] = frozenset(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)
"""Every event name above (tests/test_log_catalogue.py keeps docs/logging.md true to them)."""
