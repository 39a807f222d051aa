"""A database or channel layer that cannot be reached is 503 `service_unavailable` with Retry-After, in
JSON, on every API path (SPEC §3)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from unittest import mock

import pytest
from channels.layers import InMemoryChannelLayer
from django.db import InterfaceError, OperationalError, connection
from django.db.backends.utils import CursorWrapper
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agents.models import Session
from scoping.context import scope
from tests.errors.conftest import assert_error


@contextlib.contextmanager
def database_down(error: Exception) -> Iterator[None]:
    """Every query of this thread's connection fails as an unreachable server would."""

    def refuse(execute, sql, params, many, context):
        raise error

    with connection.execute_wrapper(refuse):
        yield


@contextlib.contextmanager
def database_down_everywhere(error: Exception) -> Iterator[None]:
    """Every query fails, from any thread (the async views query from worker threads)."""
    with mock.patch.object(CursorWrapper, "_execute", side_effect=error):
        yield


SOME_SESSION = "5b7e2a6c-0d0e-4b8f-9a5e-6a1c7e1f2b3d"
DOWN = [
    pytest.param(OperationalError("could not connect to server: Connection refused"), id="operational"),
    pytest.param(InterfaceError("connection already closed"), id="interface"),
]


@pytest.mark.parametrize("error", DOWN)
@pytest.mark.parametrize(
    "path",
    [
        "/sessions/history",
        f"/sessions/history/{SOME_SESSION}",
        "/api/memory",
        "/api/memory?query=milk",
        "/api/stores",
        "/api/stores/items",
        "/api/stores/items/item-a1",
    ],
)
@pytest.mark.django_db
def test_reads_with_the_database_down_are_503_with_retry_after(client, error_agent, jwt_header, error, path):
    headers = jwt_header("tenant-a")
    with database_down(error):
        response = client.get(path, headers=headers)
    body = assert_error(response, 503, "service_unavailable", "try again")
    assert response["Retry-After"] == "5"
    assert "Connection refused" not in body["message"] and "closed" not in body["message"]


@pytest.mark.parametrize("error", DOWN)
@pytest.mark.django_db
def test_writes_with_the_database_down_are_503(client, error_agent, jwt_header, error):
    with database_down(error):
        response = client.post(
            "/api/memory", data={"content": "milk"}, content_type="application/json", headers=jwt_header("tenant-a")
        )
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5"


@pytest.mark.parametrize("error", DOWN)
@pytest.mark.parametrize("path", ["/chat/stream", "/chat/sync", f"/sessions/{SOME_SESSION}/cancel"])
@pytest.mark.django_db(transaction=True)
def test_chat_with_the_database_down_is_503_before_the_stream_starts(chat, error_agent, jwt_header, error, path):
    headers = jwt_header("tenant-a")
    with database_down_everywhere(error):
        result = chat.post(path, {"message": "hello"}, headers)
    assert_error(result, 503, "service_unavailable")
    assert result.headers["Retry-After"] == "5"
    assert result.frames == []


# --- The channel layer ---------------------------------------------------------------------------------------


def running_session(scope_id: str) -> Session:
    with scope(scope_id):
        return Session.objects.create(
            deploy_id="d", title="t", provider="local", model="local", lock_token="held", updated_at=timezone.now()
        )


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ConnectionRefusedError(111, "Connection refused"), id="refused"),
        pytest.param(OSError("Network is unreachable"), id="oserror"),
        pytest.param(RedisConnectionError("Error 111 connecting to 127.0.0.1:6379."), id="redis-connection"),
        pytest.param(RedisTimeoutError("Timeout reading from socket"), id="redis-timeout"),
    ],
)
@pytest.mark.django_db(transaction=True)
def test_cancel_with_the_channel_layer_down_is_503(chat, error_agent, jwt_header, error):
    session = running_session("tenant-a")
    with mock.patch.object(InMemoryChannelLayer, "group_send", side_effect=error):
        result = chat.post(f"/sessions/{session.pk}/cancel", {}, jwt_header("tenant-a"))
    error_body = assert_error(result, 503, "service_unavailable", "channel layer")
    assert result.headers["Retry-After"] == "5"
    assert "6379" not in error_body["message"]


@pytest.mark.django_db(transaction=True)
def test_cancel_with_a_channel_layer_that_hangs_is_503_in_bounded_time(chat, error_agent, jwt_header, monkeypatch):
    session = running_session("tenant-a")
    monkeypatch.setattr("agents.views.CHANNEL_LAYER_TIMEOUT_SECONDS", 0.2)

    async def hang(self, group, message):
        await asyncio.sleep(60)

    with mock.patch.object(InMemoryChannelLayer, "group_send", hang):
        result = chat.post(f"/sessions/{session.pk}/cancel", {}, jwt_header("tenant-a"))
    assert_error(result, 503, "service_unavailable")


@pytest.mark.django_db(transaction=True)
def test_cancel_with_the_channel_layer_up_still_answers_ok(chat, error_agent, jwt_header):
    session = running_session("tenant-a")
    result = chat.post(f"/sessions/{session.pk}/cancel", {}, jwt_header("tenant-a"))
    assert result.status == 200
    assert result.json() == {"ok": True, "running": True}
