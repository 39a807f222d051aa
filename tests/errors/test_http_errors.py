"""What the views never see, through the whole middleware stack: unknown API paths, wrong methods, bodies
over AMODAL_MAX_BODY_BYTES, unsafe URLs and uncaught exceptions are JSON on the API paths, and HTML
elsewhere (admin, Studio, the widget)."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from django.core.asgi import get_asgi_application
from django.test import Client

from agents.models import Session
from memory.models import MemoryEntry
from scoping.context import scope
from stores.models import StoreDocument
from tests.errors.conftest import assert_error
from tests.stores.conftest import item

# A fixed id: parametrize ids must be the same in every pytest-xdist worker.
SOME_ID = "6f1c2f4e-3b1d-4c55-9a43-2d0c8f3b7e11"

LIMIT = 1024 * 1024

# --- 404 and 405 -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/nope",
        "/api/stores/items/",
        "/api/memory/1/x",
        "/sessions/nope/x/y",
        "/chat/nope",
        "/ws/chat",
        "/sessions/",
    ],
)
@pytest.mark.django_db
def test_an_unknown_api_path_is_a_json_404(client, error_agent, jwt_header, path):
    assert_error(client.get(path, headers=jwt_header("tenant-a")), 404, "not_found")
    assert_error(client.post(path, data="{}", content_type="application/json"), 404, "not_found")


@pytest.mark.parametrize("path", ["/nope", "/chatter", "/studio/nope", "/widget/nope", "/apis/x"])
@pytest.mark.django_db
def test_other_paths_keep_djangos_html_pages(client, error_agent, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/chat/stream"),
        ("get", "/chat"),
        ("get", "/chat/sync"),
        ("put", "/chat/stream"),
        ("delete", "/chat/sync"),
        ("get", f"/sessions/{SOME_ID}/cancel"),
    ],
)
def test_a_wrong_method_on_the_chat_views_is_a_json_405_with_allow(client, method, path):
    response = getattr(client, method)(path)
    assert_error(response, 405, "method_not_allowed", method.upper(), "POST")
    assert response["Allow"] == "POST"


@pytest.mark.django_db
def test_a_wrong_method_on_a_drf_view_is_a_json_405_with_allow(client, error_agent, jwt_header):
    response = client.delete("/sessions/history", headers=jwt_header("tenant-a"))
    assert_error(response, 405, "method_not_allowed", "DELETE")
    assert "GET" in response["Allow"]


# --- 413 -------------------------------------------------------------------------------------------------


def oversized_json(size: int) -> str:
    """A JSON object body of exactly `size` bytes."""
    prefix = '{"message": "'
    return prefix + "x" * (size - len(prefix) - 2) + '"}'


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/chat/stream"),
        ("post", "/chat/sync"),
        ("post", f"/sessions/{SOME_ID}/cancel"),
        ("post", "/api/memory"),
        ("put", "/api/stores/items/item-a1"),
        ("post", "/api/stores/items"),
        ("patch", f"/sessions/history/{SOME_ID}"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_a_body_over_the_limit_is_a_json_413_and_writes_nothing(client, error_agent, jwt_header, method, path):
    body = oversized_json(LIMIT + 1)
    response = getattr(client, method)(path, data=body, content_type="application/json", headers=jwt_header("tenant-a"))
    assert_error(response, 413, "request_too_large", str(LIMIT))
    assert Session.all_scopes.count() == MemoryEntry.all_scopes.count() == StoreDocument.all_scopes.count() == 0


@pytest.mark.django_db
def test_a_body_at_the_limit_is_read(client, error_agent, jwt_header):
    response = client.post(
        "/api/memory", data=oversized_json(LIMIT), content_type="application/json", headers=jwt_header("tenant-a")
    )
    assert response.status_code == 400  # read and parsed: a message is no memory `content`
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.django_db
def test_the_limit_is_the_setting(client, error_agent, jwt_header, settings):
    settings.AMODAL_MAX_BODY_BYTES = 100
    headers = jwt_header("tenant-a")
    too_big = client.post(
        "/api/memory", data=json.dumps({"content": "x" * 100}), content_type="application/json", headers=headers
    )
    assert_error(too_big, 413, "request_too_large", "100 bytes")
    fits = client.post(
        "/api/memory", data=json.dumps({"content": "milk"}), content_type="application/json", headers=headers
    )
    assert fits.status_code == 201
    with scope("tenant-a"):
        assert list(MemoryEntry.objects.values_list("content", flat=True)) == ["milk"]


def asgi_post(path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> tuple[int, dict, bytes]:
    """POST straight to the ASGI application (as daphne does), the body in chunks, no Content-Length."""
    application = get_asgi_application()
    scope_ = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
    }
    incoming = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    incoming.append({"type": "http.request", "body": b"", "more_body": False})
    sent: list[dict] = []

    async def receive():
        if incoming:
            return incoming.pop(0)
        await asyncio.Event().wait()  # the client stays connected until the answer is sent

    async def send(message):
        sent.append(message)

    asyncio.run(application(scope_, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body


def test_a_chunked_body_without_content_length_is_measured_too(jwt_header):
    status, headers, body = asgi_post(
        "/chat/stream",
        [b" " * 65536] * 17 + [b"{}"],
        [(b"authorization", jwt_header("tenant-a")["Authorization"].encode())],
    )
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "request_too_large"


# --- Unsafe URLs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/sessions/history?tags=a%00b", "tags"),
        ("/sessions/history?before=%00", "before"),
        ("/api/memory?query=milk%00", "query"),
        ("/api/stores/items?sort=%00", "sort"),
        ("/api/stores/items/item-a%001", "path"),
        ("/api/stores/items?x%00=1", "query"),
    ],
)
@pytest.mark.django_db
def test_a_nul_in_the_url_is_a_400_naming_the_parameter(client, error_agent, jwt_header, path, field):
    assert_error(client.get(path, headers=jwt_header("tenant-a")), 400, "validation_error", f"{field}:", "NUL")


# --- Uncaught exceptions ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_uncaught_exception_in_a_chat_view_is_a_logged_json_500(chat, error_agent, jwt_header, caplog):
    with mock.patch("agents.views.prepare_chat", side_effect=RuntimeError("internal detail")):
        result = chat.stream({"message": "hi"}, jwt_header("tenant-a"))
    error = assert_error(result, 500, "internal_error")
    assert "internal detail" not in error["message"]
    assert "internal detail" in caplog.text and "Traceback" in caplog.text


@pytest.mark.django_db
def test_an_uncaught_exception_in_a_drf_view_is_a_logged_json_500(client, error_agent, jwt_header, caplog):
    with mock.patch("agents.selectors.session_page", side_effect=KeyError("internal detail")):
        response = client.get("/sessions/history", headers=jwt_header("tenant-a"))
    error = assert_error(response, 500, "internal_error")
    assert "internal detail" not in error["message"]
    assert "internal detail" in caplog.text and "Traceback" in caplog.text


@pytest.mark.django_db
def test_an_exception_in_a_middleware_on_an_api_path_is_a_json_500(error_agent, jwt_header):
    client = Client(raise_request_exception=False)
    with mock.patch(
        "django.contrib.sessions.middleware.SessionMiddleware.process_request",
        side_effect=RuntimeError("internal detail"),
    ):
        api = client.get("/sessions/history", headers=jwt_header("tenant-a"))
        studio = client.get("/studio/")
    assert_error(api, 500, "internal_error")
    assert studio.status_code == 500 and studio["Content-Type"].startswith("text/html")


@pytest.mark.django_db(transaction=True)
def test_a_stream_still_streams_through_the_middleware(chat, error_agent, jwt_header):
    result = chat.stream({"message": "/say still streaming"}, jwt_header("tenant-a"))
    assert result.status == 200
    assert result.headers["Content-Type"] == "text/event-stream"
    assert [event["type"] for event in result.events][0] == "init"
    assert result.events[-1]["type"] == "done"


@pytest.mark.django_db
def test_a_document_put_still_works(client, error_agent, jwt_header):
    response = client.put(
        "/api/stores/items/item-a1",
        data=json.dumps({"data": item("a1")}),
        content_type="application/json",
        headers=jwt_header("tenant-a"),
    )
    assert response.status_code == 201, response.content
