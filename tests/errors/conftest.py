"""The error layer's tests: an agent with stores and memory, and one check of the error shape."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.agent_folder import AgentFolder
from tests.e2e.conftest import daphne_server, live_database, live_server_factory  # noqa: F401  (fixtures)
from tests.stores.conftest import store_agent_folder

MEMORY = {"enabled": True, "maxEntries": 50, "maxTotalChars": 8000}


@pytest.fixture
def error_agent(tmp_path, use_agent) -> AgentFolder:
    """The stores of tests/stores (items, preferences, a shared store...) and memory enabled."""
    return use_agent(store_agent_folder(tmp_path / "agent", memory=MEMORY))


def error_of(status: int, headers: Any, body: bytes) -> dict[str, str]:
    """The `error` object of a JSON error answer, after checking the status, the media type and that
    the body is exactly the error shape."""
    content_type = headers.get("Content-Type") or headers.get("content-type") or ""
    assert content_type.split(";")[0] == "application/json", (status, content_type, body[:300])
    payload = json.loads(body)
    assert set(payload) == {"error"}, payload
    assert set(payload["error"]) == {"code", "message"}, payload
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"].strip(), payload
    return payload["error"]


def assert_error(response: Any, status: int, code: str, *fragments: str) -> dict[str, str]:
    """A Django test response, an httpx response or a tests.conftest.ChatResult: status, JSON shape,
    code, and every fragment (the field's name) in the message."""
    actual = getattr(response, "status_code", None) or getattr(response, "status", None)
    body = getattr(response, "body", None) or response.content
    headers = response.headers
    assert actual == status, (actual, body[:300])
    error = error_of(actual, headers, body)
    assert error["code"] == code, error
    for fragment in fragments:
        assert fragment in error["message"], (fragment, error)
    return error
