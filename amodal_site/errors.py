"""One error shape for every JSON answer: {"error": {"code": "<snake_case>", "message": "<sentence>"}}."""

from __future__ import annotations

from django.http import JsonResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ApiError(Exception):
    """An error meant for the caller: its status, code and message are safe to show."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def as_body(self) -> dict:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse(error_body(code, message), status=status)


def first_validation_message(detail, path: str = "") -> tuple[str, str]:
    """The first (field, message) of a DRF ValidationError detail, with a dotted field path."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key in ("non_field_errors", "detail"):
                return first_validation_message(value, path)
            return first_validation_message(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        return first_validation_message(detail[0], path)
    return path, str(detail)


def validation_error(detail) -> ApiError:
    field, message = first_validation_message(detail)
    text = f"{field}: {message}" if field else message
    return ApiError(400, "validation_error", text)


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


def api_exception_handler(exc, context):
    """DRF's handler, answering in the project's error shape."""
    if isinstance(exc, ApiError):
        return Response(exc.as_body(), status=exc.status)
    if isinstance(exc, drf_exceptions.ValidationError):
        error = validation_error(exc.detail)
        return Response(error.as_body(), status=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), "error")
    detail = exc.detail if isinstance(exc, drf_exceptions.APIException) else str(exc)
    response.data = error_body(code, str(detail))
    return response
