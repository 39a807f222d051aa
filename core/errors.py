"""One error shape for every JSON answer: {"error": {"code": "<snake_case>", "message": "<sentence>"}}.

Errors are classes that carry their status and code (`NotFound`, `ValidationFailed`, `ServiceUnavailable`,
...); `ApiError(status, code, message)` stays for a one-off error. `exception_to_error` turns any exception
into an ApiError (an unavailable database is 503 `service_unavailable` with `Retry-After`, anything
unexpected is a logged 500 `internal_error`), and both the DRF exception handler below and the API-path
middleware (amodal_site.middleware) answer through it, so every API path fails the same way.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
MAX_JSON_DEPTH = 64


class ApiError(Exception):
    """An error meant for the caller: its status, code and message are safe to show."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def as_body(self) -> dict[str, dict[str, str]]:
        return error_body(self.code, self.message)

    def as_response(self) -> JsonResponse:
        response = JsonResponse(self.as_body(), status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


class KnownError(ApiError):
    """An ApiError whose status and default code are its class's: `raise NotFound("No such thing.")`."""

    status_code: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(self.status_code, code or self.default_code, message, headers=headers)


class ValidationFailed(KnownError):
    status_code, default_code = 400, "validation_error"


class InvalidJson(KnownError):
    status_code, default_code = 400, "invalid_json"


class BadRequestError(KnownError):
    status_code, default_code = 400, "bad_request"


class Unauthorized(KnownError):
    status_code, default_code = 401, "authentication_required"


class Forbidden(KnownError):
    status_code, default_code = 403, "forbidden"


class NotFound(KnownError):
    status_code, default_code = 404, "not_found"


class MethodNotAllowed(KnownError):
    status_code, default_code = 405, "method_not_allowed"

    def __init__(self, method: str, allowed: list[str]) -> None:
        super().__init__(
            f"This address does not accept {method}; use {', '.join(allowed)}.", headers={"Allow": ", ".join(allowed)}
        )


class Conflict(KnownError):
    status_code, default_code = 409, "conflict"


class RequestTooLarge(KnownError):
    status_code, default_code = 413, "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than this server accepts ({limit} bytes at most).")


class RateLimited(KnownError):
    status_code, default_code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class InternalError(KnownError):
    status_code, default_code = 500, "internal_error"

    def __init__(self, message: str = "Something went wrong on the server; the request was not completed.") -> None:
        super().__init__(message)


class ServiceUnavailable(KnownError):
    status_code, default_code = 503, "service_unavailable"

    def __init__(
        self,
        message: str = "The server's database is busy or unavailable; please try again shortly.",
        *,
        retry_after: int = RETRY_AFTER_SECONDS,
    ) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})


def too_deep(field: str = "body") -> InvalidJson:
    return InvalidJson(
        f"{field}: the JSON is nested deeper than {MAX_JSON_DEPTH} levels, the most this server accepts."
    )


# --- The body ------------------------------------------------------------------------------------------


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    # A message may quote the caller's input: lone surrogates in it would make the body unencodable.
    safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return {"error": {"code": code, "message": safe}}


def error_response(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def first_validation_message(detail: object, path: str = "") -> tuple[str, str]:
    """The first (field, message) of a DRF ValidationError detail, with a dotted field path."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "detail"):
                return first_validation_message(value, path)
            return first_validation_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        return first_validation_message(detail[0], path)
    return path, str(detail)


def validation_error(detail: object) -> ApiError:
    field, message = first_validation_message(detail)
    text = f"{field}: {message}" if field else message
    return ValidationFailed(text)


# --- Any exception as an ApiError ------------------------------------------------------------------------


def database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or is overloaded (a retry may succeed), as opposed to a query that
    is wrong (IntegrityError, DataError, ProgrammingError: a bug, answered 500)."""
    return isinstance(exc, OperationalError | InterfaceError) or type(exc) is DatabaseError


def exception_to_error(exc: BaseException, *, path: str = "") -> ApiError:
    """The ApiError to answer for `exc`; unexpected exceptions are logged with their traceback."""
    if isinstance(exc, ApiError):
        return exc
    if database_unavailable(exc):
        logger.warning("database unavailable for %s: %s", path or "a request", exc, exc_info=exc)
        return ServiceUnavailable()
    if isinstance(exc, RecursionError):
        return too_deep()
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge(settings.AMODAL_MAX_BODY_BYTES)
    if isinstance(exc, Http404):
        return NotFound("Nothing exists at this address.")
    if isinstance(exc, PermissionDenied):
        return Forbidden("You may not do this.")
    if isinstance(exc, BadRequest | SuspiciousOperation):
        return BadRequestError("The request could not be understood.")
    logger.error("internal error for %s", path or "a request", exc_info=exc)
    return InternalError()


# --- An error response that is not JSON, rewritten ---------------------------------------------------------

STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    401: ("authentication_required", "This address needs a bearer token or API key."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "Nothing exists at this address."),
    413: ("request_too_large", "The request body is larger than this server accepts."),
    500: ("internal_error", "Something went wrong on the server; the request was not completed."),
    503: ("service_unavailable", "The server is busy or unavailable; please try again shortly."),
}


def snake_case(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def status_error(response: HttpResponse, method: str) -> tuple[str, str]:
    """The (code, message) for an error response of this status (Django's 404, 405, 500 pages...)."""
    status = response.status_code
    if status == 405:
        allowed = response.get("Allow", "")
        return "method_not_allowed", f"This address does not accept {method}; use {allowed or 'another method'}."
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error" if status < 500 else "Server error"
    return snake_case(phrase) or "error", f"{phrase}."


def is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").split(";")[0].strip() == "application/json"


def rewrite_as_json(response: HttpResponse, method: str) -> HttpResponse:
    """Replace a non-JSON error response's body with the error shape, keeping its status, headers (Allow,
    CORS...) and cookies."""
    code, message = status_error(response, method)
    response.content = JsonResponse(error_body(code, message)).content
    response["Content-Type"] = "application/json"
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))
    if response.status_code == 503 and not response.has_header("Retry-After"):
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


# --- DRF -----------------------------------------------------------------------------------------------------

DRF_CODES = {
    drf_exceptions.NotAuthenticated: "authentication_required",
    drf_exceptions.AuthenticationFailed: "invalid_token",
    drf_exceptions.PermissionDenied: "forbidden",
    drf_exceptions.NotFound: "not_found",
    drf_exceptions.MethodNotAllowed: "method_not_allowed",
    drf_exceptions.ParseError: "invalid_json",
    drf_exceptions.UnsupportedMediaType: "unsupported_media_type",
    drf_exceptions.Throttled: "throttled",
}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's handler, answering in the project's error shape; never None, so DRF never renders HTML."""
    # Imported here: rest_framework.views loads the parser classes, and ours (core.validation)
    # imports this module.
    from rest_framework.views import exception_handler as drf_exception_handler
    from rest_framework.views import set_rollback

    if isinstance(exc, drf_exceptions.ValidationError):
        exc = validation_error(exc.detail)
    if not isinstance(exc, ApiError):
        response = drf_exception_handler(exc, context)  # DRF's own errors, Http404 and PermissionDenied
        if response is not None:
            code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), None)
            default_code, default_message = status_error(response, "")
            detail = str(exc.detail if isinstance(exc, drf_exceptions.APIException) else exc)
            # A bare Http404 or PermissionDenied has no text: the status's own sentence, never an empty one.
            response.data = error_body(code or default_code, detail or default_message)
            return response
    request = context.get("request")
    error = exception_to_error(exc, path=getattr(request, "path", ""))
    set_rollback()
    return Response(error.as_body(), status=error.status, headers=error.headers)
