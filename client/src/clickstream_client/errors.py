"""Errors raised by the client: one class per kind of failure a caller handles differently."""

from __future__ import annotations

from typing import Any


class ClickstreamError(Exception):
    """The API answered with an error status, or could not be reached.

    ``status`` is the HTTP status (``None`` when no response was received) and ``body`` the parsed JSON
    body of the response (``None`` when there was none, or it was not JSON).
    """

    def __init__(self, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body

    @property
    def field_errors(self) -> list[dict[str, Any]]:
        """The per-field problems of a validation error: ``[{"field", "message", "type"}, ...]``."""
        errors = self.body.get("errors") if isinstance(self.body, dict) else None
        return [error for error in errors if isinstance(error, dict)] if isinstance(errors, list) else []

    def __str__(self) -> str:
        return self.message if self.status is None else f"{self.status} {self.message}"


class InvalidRequest(ClickstreamError):
    """The request was refused as malformed, too large or invalid (400, 413, 415, 422)."""


class Forbidden(ClickstreamError):
    """The request was not allowed (403): unsigned, signed with the wrong credentials or region, or too old."""


class NotFound(ClickstreamError):
    """The session, batch, release or task does not exist (404)."""


class Conflict(ClickstreamError):
    """The request contradicts the stored state (409), e.g. completing a task already completed otherwise."""


class Unavailable(ClickstreamError):
    """The service stayed overloaded (503 or 429) through every retry."""


class ServerError(ClickstreamError):
    """The service failed (500 and other 5xx); the body usually carries a ``request_id`` to report."""


class ConnectionFailed(ClickstreamError):
    """No response: the API could not be reached, or did not answer in time, through every retry."""


class WaitTimedOut(ClickstreamError):
    """A wait gave up before what it waited for finished; ``body`` is the last state read."""


class ConfigurationError(ClickstreamError):
    """The client cannot make a request as configured: no credentials, no region, unknown profile or stack."""


_ERRORS_BY_STATUS: dict[int, type[ClickstreamError]] = {
    400: InvalidRequest,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: Unavailable,
    503: Unavailable,
}


def error_for_response(status: int, body: Any, text: str, *, attempts: int = 1) -> ClickstreamError:
    """The exception for an error response, with the API's own message when its body has one."""
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = text.strip()[:200] or "no message"
    request_id = body.get("request_id") if isinstance(body, dict) else None
    if request_id:
        message += f" (request id {request_id})"
    error_class = _ERRORS_BY_STATUS.get(status) or (ServerError if status >= 500 else ClickstreamError)
    if error_class is Unavailable and attempts > 1:
        message += f" (gave up after {attempts} attempts)"
    return error_class(message, status=status, body=body)
