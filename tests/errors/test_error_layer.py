"""The error layer as units: error classes, any exception as an error, the DRF handler, the middleware's
async shape and its hands-off treatment of streams, and the shared input checks."""

from __future__ import annotations

import json
import logging

import pytest
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, DataError, IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpResponse, HttpResponseNotAllowed, JsonResponse, StreamingHttpResponse
from django.test import RequestFactory
from rest_framework import exceptions as drf_exceptions

from amodal_site.middleware import ApiErrorMiddleware, is_api_path
from core.errors import (
    ApiError,
    Conflict,
    Forbidden,
    InternalError,
    InvalidJson,
    MethodNotAllowed,
    NotFound,
    RequestTooLarge,
    ServiceUnavailable,
    ValidationFailed,
    api_exception_handler,
    exception_to_error,
)
from core.validation import json_depth_exceeds, json_text_problems, load_json, parse_whole_number


def body_of(response) -> dict:
    return json.loads(response.content) if hasattr(response, "content") and response.content else response.data


# --- Error classes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ApiError(418, "teapot", "I am a teapot."), 418, "teapot"),
        (ValidationFailed("limit: too big."), 400, "validation_error"),
        (InvalidJson("body: not JSON."), 400, "invalid_json"),
        (Forbidden("No."), 403, "forbidden"),
        (NotFound("Gone."), 404, "not_found"),
        (NotFound("Gone.", code="session_not_found"), 404, "session_not_found"),
        (MethodNotAllowed("GET", ["POST"]), 405, "method_not_allowed"),
        (Conflict("Busy."), 409, "conflict"),
        (RequestTooLarge(1024), 413, "request_too_large"),
        (InternalError(), 500, "internal_error"),
        (ServiceUnavailable(), 503, "service_unavailable"),
    ],
)
def test_an_error_class_carries_its_status_and_code(error, status, code):
    response = error.as_response()
    assert (error.status, error.code) == (status, code)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"error": {"code": code, "message": error.message}}


def test_service_unavailable_says_when_to_retry_and_method_not_allowed_what_is_allowed():
    assert ServiceUnavailable().as_response()["Retry-After"] == "5"
    assert ServiceUnavailable(retry_after=30).as_response()["Retry-After"] == "30"
    assert MethodNotAllowed("GET", ["POST"]).as_response()["Allow"] == "POST"


def test_a_message_quoting_a_lone_surrogate_still_encodes():
    response = ValidationFailed("name: '\ud800' is not allowed.").as_response()
    assert json.loads(response.content)["error"]["message"] == "name: '\\ud800' is not allowed."


# --- Any exception as an error ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exception", "status", "code"),
    [
        (OperationalError("could not connect to server"), 503, "service_unavailable"),
        (InterfaceError("connection already closed"), 503, "service_unavailable"),
        (DatabaseError("database unavailable"), 503, "service_unavailable"),
        (IntegrityError("duplicate key"), 500, "internal_error"),
        (DataError("invalid input"), 500, "internal_error"),
        (RecursionError("maximum recursion depth exceeded"), 400, "invalid_json"),
        (RequestDataTooBig("too big"), 413, "request_too_large"),
        (Http404("nope"), 404, "not_found"),
        (PermissionDenied("nope"), 403, "forbidden"),
        (SuspiciousOperation("odd"), 400, "bad_request"),
        (RuntimeError("boom"), 500, "internal_error"),
        (KeyError("x"), 500, "internal_error"),
    ],
)
def test_any_exception_becomes_an_error(exception, status, code):
    error = exception_to_error(exception)
    assert (error.status, error.code) == (status, code)
    assert str(exception) not in error.message or status < 500  # internals are never shown


def test_an_unavailable_database_is_503_with_retry_after():
    error = exception_to_error(OperationalError("connection refused"))
    assert error.headers == {"Retry-After": "5"}


def test_an_unexpected_exception_is_logged_with_its_traceback(caplog):
    cause = RuntimeError("the real cause")
    try:
        raise cause
    except RuntimeError as exc:
        with caplog.at_level(logging.ERROR, logger="core.errors"):
            error = exception_to_error(exc, path="/api/memory")
    assert error.code == "internal_error"
    [record] = [r for r in caplog.records if r.name == "core.errors"]
    assert "/api/memory" in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is cause
    assert "the real cause" in caplog.text and "Traceback" in caplog.text


# --- The DRF exception handler ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exception", "status", "code", "fragment"),
    [
        (drf_exceptions.ValidationError({"title": ["Too long."]}), 400, "validation_error", "title: Too long."),
        (drf_exceptions.ParseError("bad json"), 400, "invalid_json", "bad json"),
        (drf_exceptions.NotAuthenticated(), 401, "authentication_required", ""),
        (drf_exceptions.AuthenticationFailed("expired"), 401, "invalid_token", "expired"),
        (drf_exceptions.MethodNotAllowed("PUT"), 405, "method_not_allowed", "PUT"),
        (Http404(), 404, "not_found", "Nothing exists at this address."),
        (DjangoPermissionDenied(), 403, "forbidden", "You may not do this."),
        (NotFound("No memory entry 7.", code="memory_entry_not_found"), 404, "memory_entry_not_found", "entry 7"),
        (OperationalError("server closed the connection"), 503, "service_unavailable", "try again"),
        (InterfaceError("connection already closed"), 503, "service_unavailable", "try again"),
        (RecursionError(), 400, "invalid_json", "64 levels"),
        (RuntimeError("secret internals"), 500, "internal_error", "went wrong"),
    ],
)
def test_the_drf_handler_answers_every_exception_in_the_error_shape(exception, status, code, fragment):
    request = RequestFactory().get("/api/memory")
    response = api_exception_handler(exception, {"request": request, "view": None})
    assert response is not None
    assert response.status_code == status
    body = response.data
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert fragment in body["error"]["message"]
    assert body["error"]["message"].strip()  # never an empty message, even for a bare Http404
    assert "secret internals" not in body["error"]["message"]
    if status == 503:
        assert response["Retry-After"] == "5"


# --- The middleware ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/chat", True),
        ("/chat/stream", True),
        ("/chat/sync", True),
        ("/sessions/history", True),
        ("/sessions/x/cancel", True),
        ("/api/stores", True),
        ("/api/nope", True),
        ("/ws/chat", True),
        ("/chatter", False),
        ("/admin/", False),
        ("/studio/", False),
        ("/widget/amodal/x.js", False),
        ("/health", False),
        ("/", False),
        ("/apis", False),
    ],
)
def test_only_the_api_paths_are_the_middlewares(path, api):
    assert is_api_path(path) is api


def test_the_middleware_is_async_only_so_the_stream_has_no_thread_hop():
    async def get_response(request):
        return HttpResponse()

    middleware = ApiErrorMiddleware(get_response)
    assert ApiErrorMiddleware.sync_capable is False and ApiErrorMiddleware.async_capable is True
    assert iscoroutinefunction(middleware)


def test_a_streaming_response_passes_through_untouched_and_unread():
    consumed: list[str] = []

    async def frames():
        consumed.append("read")
        yield "data: {}\n\n"

    streaming = StreamingHttpResponse(frames(), content_type="text/event-stream", status=500)

    async def get_response(request):
        return streaming

    response = async_to_sync(ApiErrorMiddleware(get_response))(RequestFactory().post("/chat/stream"))
    assert response is streaming
    assert consumed == []


@pytest.mark.parametrize(
    ("inner", "status", "code"),
    [
        (HttpResponse("<h1>Not Found</h1>", status=404), 404, "not_found"),
        (HttpResponseNotAllowed(["POST"]), 405, "method_not_allowed"),
        (HttpResponse("<h1>Server Error (500)</h1>", status=500), 500, "internal_error"),
        (HttpResponse("busy", status=503, content_type="text/plain"), 503, "service_unavailable"),
        (HttpResponse("<h1>Gone</h1>", status=410), 410, "gone"),
    ],
)
def test_a_non_json_error_response_on_an_api_path_is_rewritten(inner, status, code):
    inner["X-Kept"] = "yes"

    async def get_response(request):
        return inner

    response = async_to_sync(ApiErrorMiddleware(get_response))(RequestFactory().get("/api/x"))
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == code
    assert response["X-Kept"] == "yes"
    if status == 405:
        assert response["Allow"] == "POST"
    if status == 503:
        assert response["Retry-After"] == "5"


def test_json_responses_and_non_api_paths_are_left_alone():
    json_error = JsonResponse({"error": {"code": "x", "message": "y."}}, status=409)
    html_error = HttpResponse("<h1>Not Found</h1>", status=404)

    def middleware_returning(response):
        async def get_response(request):
            return response

        return async_to_sync(ApiErrorMiddleware(get_response))

    assert middleware_returning(json_error)(RequestFactory().get("/api/x")) is json_error
    assert middleware_returning(html_error)(RequestFactory().get("/studio/x")).content == b"<h1>Not Found</h1>"


# --- Shared input checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5", 5),
        (" 7 ", 7),
        ("200", 200),
        (3, 3),
        (4.0, 4),
        ("1", 1),
    ],
)
def test_whole_numbers_in_range_are_read(raw, expected):
    assert parse_whole_number(raw, "limit", minimum=1, maximum=200) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "²",
        "١٢",
        "1e3",
        "-1",
        "0",
        "201",
        "+5",
        "5.0",
        "",
        "abc",
        "99999999999999999999",
        "9" * 5000,
        True,
        2.5,
        float("inf"),
        float("nan"),
        1e300,
        None,
        [],
        {},
    ],
)
def test_anything_else_is_a_400_naming_the_parameter(raw):
    with pytest.raises(ValidationFailed, match=r"^limit: must be a whole number from 1 to 200\.$"):
        parse_whole_number(raw, "limit", minimum=1, maximum=200)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[" * 100_000, "64 levels"),
        ("[" * 65 + "]" * 65, "64 levels"),
        ('{"a":' * 65 + "1" + "}" * 65, "64 levels"),
        (b"{", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": -Infinity}', "not valid JSON"),
    ],
)
def test_json_that_is_too_deep_or_not_json_is_refused(raw, fragment):
    with pytest.raises(InvalidJson, match=fragment):
        load_json(raw)


def test_json_nested_exactly_64_levels_is_read():
    value = load_json("[" * 64 + "]" * 64)
    assert not json_depth_exceeds(value)
    assert json_depth_exceeds(load_json("[" * 63 + "]" * 63), limit=62)


def test_unsafe_text_is_found_in_any_key_or_value_at_any_depth():
    value = {"ok": "fine", "a": {"b": ["x", "y\x00"]}, "k\ud800": 1, "deep": [[[["\udfff"]]]]}
    problems = dict(json_text_problems(value, "data"))
    assert set(problems) == {"data.a.b[1]", "data", "data.deep[0][0][0][0]"}
    assert "NUL" in problems["data.a.b[1]"]
    assert "key" in problems["data"] and "surrogate" in problems["data"]
    assert "U+DFFF" in problems["data.deep[0][0][0][0]"]
    assert list(json_text_problems({"text": "émoji 😀 ok"}, "data")) == []
