"""Exceptions the simulator raises.

    Exception
     +-- DropConnection          the server must abort the TCP connection, no response
     |    +-- ClusterUnreachable the cluster does not listen at all
     +-- ApiError                an ONTAP error response (status + ONTAP error body)

`DropConnection` crosses the boundary to the socket server (and to `SimulatorTransport`);
`ApiError` never leaves the application: the app turns it into a response.
"""

from __future__ import annotations

from typing import Any


class DropConnection(Exception):
    """The scenario says: drop this connection without sending a response."""


class ClusterUnreachable(DropConnection):
    """The request reached a cluster the scenario marks unreachable (in-process use only)."""


class ApiError(Exception):
    """An ONTAP error answer: HTTP status plus `{"error": {"message", "code", ...}}`."""

    def __init__(
        self,
        status: int,
        code: int | str,
        message: str,
        *,
        target: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = str(code)
        self.message = message
        self.target = target
        self.headers = headers or []

    def body(self) -> dict[str, Any]:
        """The ONTAP error body for this error."""
        error: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.target is not None:
            error["target"] = self.target
        return {"error": error}


def not_found(target: str | None = None, message: str = "entry doesn't exist") -> ApiError:
    """ONTAP's 404 for a record that does not exist (code 4)."""
    return ApiError(404, 4, message, target=target)


def invalid_value(target: str, message: str | None = None) -> ApiError:
    """ONTAP's 400 for a bad query or body value (code 262197)."""
    return ApiError(400, 262197, message or f'Invalid value for field "{target}".', target=target)


# ONTAP-shaped bodies for scenario 5xx answers: status -> (code, message)
HTTP_ERRORS = {
    500: (262291, "Internal server error (simulated)."),
    502: (262291, "Bad gateway (simulated)."),
    503: (7, "Service unavailable (simulated)."),
    504: (262291, "The operation did not complete within the system timeout (simulated)."),
}


def http_error(status: int, retry_after_s: int) -> ApiError:
    """A scenario 5xx with an ONTAP body (503 carries Retry-After)."""
    code, message = HTTP_ERRORS[status]
    headers = [("retry-after", str(retry_after_s))] if status == 503 else []
    return ApiError(status, code, message, headers=headers)
