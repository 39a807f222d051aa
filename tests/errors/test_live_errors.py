"""The error layer seen from outside: a real daphne process, real sockets and headers."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.helpers import check_stream, events_of, iter_frames
from tests.errors.conftest import assert_error

pytestmark = pytest.mark.live

SCOPE = "household-garcia"
TEN_MB = 10 * 1024 * 1024


def headers_for(server) -> dict[str, str]:
    return server.headers(SCOPE, {"household_id": SCOPE})


def test_a_10_mb_body_is_a_json_413(daphne_server):
    body = b'{"message": "' + b"x" * TEN_MB + b'"}'
    with daphne_server.client() as client:
        response = client.post(
            "/chat/stream",
            content=body,
            timeout=httpx.Timeout(60.0, connect=5.0),
            headers={**headers_for(daphne_server), "Content-Type": "application/json"},
        )
    assert_error(response, 413, "request_too_large", "1048576 bytes")
    assert response.headers["content-type"] == "application/json"


def test_a_chunked_body_over_the_limit_is_a_json_413(daphne_server):
    def chunks():
        yield b'{"content": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    with daphne_server.client() as client:
        response = client.post(
            "/api/memory", content=chunks(), headers={**headers_for(daphne_server), "Content-Type": "application/json"}
        )
    assert "content-length" not in {name.lower() for name in response.request.headers}
    assert_error(response, 413, "request_too_large")


def test_get_on_the_chat_stream_is_a_json_405_with_allow(daphne_server):
    with daphne_server.client() as client:
        response = client.get("/chat/stream", headers=headers_for(daphne_server))
    assert_error(response, 405, "method_not_allowed", "GET", "POST")
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/api/nope", "/sessions/nope/x/y", "/ws/nope"])
def test_an_unknown_api_path_is_a_json_404(daphne_server, path):
    with daphne_server.client() as client:
        response = client.get(path, headers=headers_for(daphne_server))
    assert_error(response, 404, "not_found")


def test_other_paths_keep_html(daphne_server):
    with daphne_server.client() as client:
        response = client.get("/studio/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/chat/stream", "/chat/sync", "/api/memory"])
@pytest.mark.parametrize("depth", [65, 100_000])
def test_deep_json_is_a_json_400(daphne_server, path, depth):
    with daphne_server.client() as client:
        response = client.post(
            path,
            content="[" * depth + "]" * depth,
            headers={**headers_for(daphne_server), "Content-Type": "application/json"},
        )
    assert_error(response, 400, "invalid_json", "64 levels")


def test_a_lone_surrogate_in_memory_content_is_a_json_400(daphne_server):
    with daphne_server.client() as client:
        response = client.post(
            "/api/memory",
            content=b'{"content": "milk \\ud800"}',
            headers={**headers_for(daphne_server), "Content-Type": "application/json"},
        )
    assert_error(response, 400, "validation_error", "content:", "surrogate")


def test_the_stream_still_streams_through_the_error_layer(daphne_server):
    body = {"message": "/say still here"}
    with (
        daphne_server.client() as client,
        client.stream("POST", "/chat/stream", json=body, headers=headers_for(daphne_server)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = events_of(list(iter_frames(response)))
    check_stream(events)
    assert [event["type"] for event in events][:: len(events) - 1] == ["init", "done"]
