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
        code: int | str | None,
        message: str,
        *,
        target: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = None if code is None else str(code)
        self.message = message
        self.target = target
        self.headers = headers or []

    def body(self) -> dict[str, Any]:
        """The ONTAP error body for this error."""
        error: dict[str, Any] = {"message": self.message}
        if self.code is not None:
            error["code"] = self.code
        if self.target is not None:
            error["target"] = self.target
        return {"error": error}


def not_found(target: str | None = None, message: str = "entry doesn't exist") -> ApiError:
    """ONTAP's 404 for a record that does not exist (code 4)."""
    return ApiError(404, 4, message, target=target)


# ONTAP's generic error codes (ontap-rest-notes.md section 6)
METHOD_NOT_ALLOWED_CODE = 3
NOT_FOUND_CODE = 4
MISSING_VALUE_CODE = 262177
UNEXPECTED_ARGUMENT_CODE = 262179
INVALID_VALUE_CODE = 262197
INVALID_JSON_CODE = 262199  # the body does not parse as JSON
INVALID_JSON_TYPE_CODE = 262201  # it parses, but is not a JSON object
SYSTEM_TIMEOUT_CODE = 262291


def invalid_value(target: str, message: str | None = None) -> ApiError:
    """ONTAP's 400 for a bad query or body value (code 262197)."""
    text = message or f'Invalid value for field "{target}".'
    return ApiError(400, INVALID_VALUE_CODE, text, target=target)


def out_of_range(name: str, raw: str, low: int, high: int) -> ApiError:
    """ONTAP's 400 for a number outside its range, e.g. return_timeout=121."""
    message = f'The value "{raw}" is invalid for field "{name}" (<{low}..{high}>)'
    return ApiError(400, INVALID_VALUE_CODE, message, target=name)


def unexpected_argument(name: str) -> ApiError:
    """ONTAP's 400 for a query parameter or body field the API does not have (262179)."""
    return ApiError(400, UNEXPECTED_ARGUMENT_CODE, f'Unexpected argument "{name}".', target=name)


def missing_value(name: str) -> ApiError:
    """ONTAP's 400 for a required body field that is absent (262177)."""
    message = f'Missing value for required field "{name}".'
    return ApiError(400, MISSING_VALUE_CODE, message, target=name)


# Scenario 5xx answers: status -> (ONTAP code or None, message). Only the timeout case has a
# documented code (262291); none is documented for a generic 500/502, so none is sent.
HTTP_ERRORS: dict[int, tuple[int | None, str]] = {
    500: (None, "A general internal error occurred at the server (simulated)."),
    502: (None, "Bad gateway (simulated)."),
    503: (7, "Service unavailable: resource limit exceeded (simulated)."),
    504: (
        SYSTEM_TIMEOUT_CODE,
        "The operation did not complete within the system timeout. Retry later (simulated).",
    ),
}


def http_error(status: int, retry_after_s: int | None) -> ApiError:
    """A scenario 5xx with an ONTAP body; `retry_after_s` given: a `Retry-After` header."""
    code, message = HTTP_ERRORS[status]
    headers = [("retry-after", str(retry_after_s))] if retry_after_s is not None else []
    return ApiError(status, code, message, headers=headers)
