"""The one error type every ONTAP interaction is translated into, and its classes.

Error tree::

    OntapError                 raised by orchestrator.ontap.client for every failure
      kind = HTTP              an HTTP status with ONTAP's error body (code, message)
      kind = JOB               a rekey job that ended in `failure` (code, message)
      kind = CONNECT           never reached ONTAP: refused, reset before send, connect timeout
      kind = SENT              may have reached ONTAP: read timeout, drop after the request
      kind = TLS               certificate verification or handshake failure
      kind = PROTOCOL          the cluster answered something that is not ONTAP's API

The transport layer translates once (`orchestrator.ontap.client`), `classify()` in
`orchestrator.core.policy` decides what to do, purely, from this value.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    HTTP = "http"
    JOB = "job"
    CONNECT = "connect"
    SENT = "sent"
    TLS = "tls"
    PROTOCOL = "protocol"


class ErrorClass(StrEnum):
    """What the engine does with an error."""

    RETRYABLE = "retryable"  # wait (backoff, Retry-After) and try again
    BOUNDED = "retryable_bounded"  # retry a few times, then `failed` with the hint
    UNCERTAIN = "uncertain"  # the POST may have taken effect: settle before anything else
    AUTH = "auth"  # 401: stop the whole cluster at once, never retry (lockout)
    SKIP = "skip"  # `skipped` (e.g. not configured)
    FATAL = "fatal"  # `failed` with a hint


class OntapError(Exception):
    """A failed ONTAP interaction, with everything the policy and the reports need.

    `code` is ONTAP's error code normalised to a decimal string (a job's integer `code`
    and an error body's string `error.code` both end up here). `maybe_sent` is True when
    the request may have reached ONTAP and changed something.
    """

    def __init__(
        self,
        *,
        cluster: str,
        operation: str,
        kind: ErrorKind,
        message: str,
        status: int | None = None,
        code: str | None = None,
        maybe_sent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        self.cluster = cluster
        self.operation = operation
        self.kind = kind
        self.message = message
        self.status = status
        self.code = code
        self.maybe_sent = maybe_sent
        self.retry_after = retry_after
        super().__init__(self.summary())

    def summary(self) -> str:
        """One line: `cluster: operation: HTTP 409 code 8: message`."""
        parts = [
            p
            for p in (
                f"HTTP {self.status}" if self.status is not None else None,
                f"code {self.code}" if self.code is not None else None,
            )
            if p
        ]
        head = " ".join(parts) or self.kind.value
        return f"{self.cluster}: {self.operation}: {head}: {self.message}"
