"""The chat paths through daphne are served by their own handler (amodal_site.handlers, async middleware
only): what the full middleware stack gave them, they still get, on the wire: CORS on the preflight, the
stream and errors, and the security headers."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import events_of, iter_frames

pytestmark = pytest.mark.live

SCOPE = "household-garcia"
ORIGIN = "https://app.example"


@pytest.fixture(scope="module")
def cors_server(live_server_factory):
    return live_server_factory(extra_env={"AMODAL_ALLOWED_ORIGINS": ORIGIN})


def test_the_preflight_of_the_stream_is_answered_without_auth(cors_server):
    with cors_server.client() as client:
        response = client.options(
            "/chat/stream",
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


@pytest.mark.parametrize("path", ["/chat/stream", "/chat"])
def test_the_stream_carries_cors_and_security_headers(cors_server, path):
    headers = {**cors_server.headers(SCOPE, {"household_id": SCOPE}), "Origin": ORIGIN}
    with (
        cors_server.client() as client,
        client.stream("POST", path, json={"message": "/say through the handler"}, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
        assert "content-security-policy" not in response.headers  # not an HTML page
        events = events_of(iter_frames(response))
    assert events[-1]["type"] == "done" and events[-1]["reason"] == "model_stop"


def test_errors_of_the_chat_carry_cors_and_are_json(cors_server):
    headers = {**cors_server.headers(SCOPE, {"household_id": SCOPE}), "Origin": ORIGIN}
    with cors_server.client() as client:
        response = client.post("/chat/sync", json={"message": 5}, headers=headers)
        unauthenticated = client.post("/chat/sync", json={"message": "hi"}, headers={"Origin": ORIGIN})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["access-control-allow-origin"] == ORIGIN


def test_another_origin_gets_no_cors_header(cors_server):
    headers = {**cors_server.headers(SCOPE, {"household_id": SCOPE}), "Origin": "https://evil.example"}
    with cors_server.client() as client:
        response = client.post("/chat/sync", json={"message": "/say hi"}, headers=headers)
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
