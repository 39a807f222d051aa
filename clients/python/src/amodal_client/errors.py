"""The exceptions the client raises: one class per family of error answer, all under `AmodalError`.

The server answers every error as `{"error": {"code": "<snake_case>", "message": "<sentence>"}}` with an HTTP
status; `error_from_response` turns such an answer into the exception of its family, carrying the code, the
message, the status and the `Retry-After` seconds when the server sent them. An `error` event in the middle
of a chat stream is not raised: it is yielded as an `ErrorEvent` (the stream then ends with `done`).
"""

from __future__ import annotations

import json
from typing import Any

import httpx


class AmodalError(Exception):
    """An error answer of the server (or the client's own: see `APIConnectionError`, `ProtocolError`).

    `code` is the server's snake_case code (`session_not_found`, `rate_limited`...), `message` its sentence,
    `status` the HTTP status (None when no answer arrived), `retry_after` the seconds the server asked to
    wait (None when it did not say)."""

    def __init__(self, message: str, *, code: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.retry_after = retry_after

    def __str__(self) -> str:
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"


class ValidationError(AmodalError):
    """400: the request was refused as it is (`validation_error` naming the field, `invalid_json`,
    `scope_required`, `invalid_scope`, `memory_disabled`...)."""


class AuthenticationError(AmodalError):
    """401: no credentials (`authentication_required`), or a token or API key that is invalid, expired or
    revoked (`invalid_token`)."""


class PermissionDenied(AmodalError):
    """403: the caller may not do this (`forbidden`, `scope_forbidden`, `shared_store_read_only`)."""


class NotFound(AmodalError):
    """404: nothing there, or another scope's (`session_not_found`, `store_not_found`, `document_not_found`,
    `memory_entry_not_found`, `credential_not_found`, `scope_not_found`...): the server answers both alike."""


class Conflict(AmodalError):
    """409: e.g. `session_busy`, another message of the session still running."""


class RequestTooLarge(AmodalError):
    """413 `request_too_large`: the body is over the server's limit."""


class RateLimited(AmodalError):
    """429 `rate_limited`: over a request or stream limit; `retry_after` says when to try again."""


class BudgetExceeded(AmodalError):
    """429 `budget_exceeded` (from `/chat/sync`): the scope has spent its budget for the period; the message
    says when it resets. On the event stream the same refusal is an `ErrorEvent` followed by `done`."""


class ServerError(AmodalError):
    """500 (`internal_error`) or another 5xx the server could not say more about."""


class ServiceUnavailable(ServerError):
    """503 `service_unavailable`: the database or channel layer is unreachable for now; see `retry_after`."""


class APIConnectionError(AmodalError):
    """No answer: the connection failed, timed out or broke off mid-stream (`code` is `connection_error`,
    `status` None). The underlying httpx exception is its `__cause__`."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="connection_error")


class ProtocolError(AmodalError):
    """An answer that is not in the shape the API promises (`code` is `protocol_error`): a body that is not
    JSON, a field of the wrong type, a stream that ended before its `done` event."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, code="protocol_error", status=status)


STATUS_CLASSES: dict[int, type[AmodalError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: RequestTooLarge,
    429: RateLimited,
    503: ServiceUnavailable,
}
# Codes whose family is not their status's.
CODE_CLASSES: dict[str, type[AmodalError]] = {"budget_exceeded": BudgetExceeded}


def retry_after_seconds(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds (the server sends whole seconds; an HTTP date is not used by it)."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if value >= 0 else None


def error_from_response(response: httpx.Response, body: bytes) -> AmodalError:
    """The exception for a non-2xx answer whose (read) body is `body`."""
    status = response.status_code
    code, message = error_code_and_message(body)
    if code is None:
        code = f"http_{status}"
        message = message or f"The server answered {status} {response.reason_phrase} without an error body."
    cls = CODE_CLASSES.get(code) or STATUS_CLASSES.get(status) or (ServerError if status >= 500 else AmodalError)
    return cls(message, code=code, status=status, retry_after=retry_after_seconds(response))


def error_code_and_message(body: bytes) -> tuple[str | None, str]:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return None, ""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        message = error.get("message")
        return error["code"], message if isinstance(message, str) else ""
    return None, ""
