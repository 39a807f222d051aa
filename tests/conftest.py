"""Shared fixtures: agent folders made for a test, tokens, API keys, and the fake Claude API."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.agent_folder import AgentFolder, load_agent_folder, set_current_agent
from scoping.services import create_api_key
from scoping.tokens import mint_token
from tests.fakes.fixtures import fake_anthropic  # noqa: F401  (a fixture)


def write_agent_folder(
    folder: Path, *, amodal: dict[str, Any] | None = None, files: dict[str, Any] | None = None
) -> Path:
    """A minimal valid agent folder; `amodal` is merged into amodal.json, `files` adds files
    (dicts are written as JSON, strings as text)."""
    manifest = {
        "name": "test-agent",
        "version": "0.0.1",
        "basePrompt": "You are a test agent.",
        "models": {"main": {"provider": "local", "model": "local"}},
    }
    manifest.update(amodal or {})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "amodal.json").write_text(json.dumps(manifest))
    for relative, content in (files or {}).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


def claude_agent_folder(
    folder: Path, base_url: str, *, model: str = "claude-sonnet-4-5", amodal: dict[str, Any] | None = None
) -> Path:
    """write_agent_folder with its main model on the `anthropic` provider at `base_url` (the fake Claude API,
    tests/fakes/anthropic_api.py); `amodal` is merged into amodal.json."""
    main = {"provider": "anthropic", "model": model, "baseUrl": base_url, "credentials": {"apiKey": "test-key"}}
    return write_agent_folder(folder, amodal={"models": {"main": main}, **(amodal or {})})


@pytest.fixture
def use_agent() -> Iterator[Callable[[Path | AgentFolder], AgentFolder]]:
    """Make a folder (or loaded AgentFolder) the server's agent for this test."""

    def use(folder: Path | AgentFolder) -> AgentFolder:
        agent = folder if isinstance(folder, AgentFolder) else load_agent_folder(folder)
        set_current_agent(agent)
        return agent

    yield use
    set_current_agent(None)


@pytest.fixture
def test_agent(tmp_path, use_agent) -> AgentFolder:
    """A plain agent on the local provider, scope not required."""
    return use_agent(write_agent_folder(tmp_path / "agent"))


@pytest.fixture
def jwt_header() -> Callable[..., dict[str, str]]:
    def header(scope_id: str, context: dict[str, str] | None = None, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": "Bearer " + mint_token(scope_id=scope_id, context=context, **kwargs)}

    return header


@pytest.fixture
def api_key_header(db) -> Callable[..., dict[str, str]]:
    def header(scope_id: str | None = None, shared_write: bool = False) -> dict[str, str]:
        key = create_api_key(name="test key", scope_id=scope_id, shared_write=shared_write)
        return {"Authorization": "Bearer " + key.raw_key}

    return header


# --- Calling the async chat views in-process (added for tests/agents) ------------------------------


class ChatResult:
    """One answer of a chat view: status, headers, and for an event stream the raw frames and events."""

    def __init__(self, status: int, headers: dict[str, str], frames: list[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.frames = frames
        self.body = body

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(frame[len("data: ") :]) for frame in self.frames if frame.startswith("data: ")]

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        return [item for item in self.events if item["type"] == type_]

    def json(self) -> Any:
        return json.loads(self.body)


class ChatClient:
    """django.test.AsyncClient around the chat endpoints. `a*` methods are coroutines (for concurrent
    requests inside one `asyncio.run`); the plain methods run one request with `asyncio.run`."""

    async def apost(
        self,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        *,
        raw: bytes | str | None = None,
        on_event: Callable[[dict], Any] | None = None,
    ) -> ChatResult:
        from django.test import AsyncClient

        data = raw if raw is not None else json.dumps(body)
        response = await AsyncClient().post(path, data=data, content_type="application/json", headers=headers or {})
        result_headers = {name: value for name, value in response.items()}
        if not response.streaming:
            return ChatResult(response.status_code, result_headers, [], response.content)
        frames: list[str] = []
        buffer = ""
        async for chunk in response.streaming_content:
            buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
            while "\n\n" in buffer:
                frame, buffer = buffer.split("\n\n", 1)
                frames.append(frame)
                if on_event is not None and frame.startswith("data: "):
                    outcome = on_event(json.loads(frame[len("data: ") :]))
                    if hasattr(outcome, "__await__"):
                        await outcome
        assert buffer == "", f"a partial frame was left at the end of the stream: {buffer!r}"
        return ChatResult(response.status_code, result_headers, frames, b"")

    async def astream(self, body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> ChatResult:
        return await self.apost("/chat/stream", body, headers, **kwargs)

    async def async_(self, body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> ChatResult:
        return await self.apost("/chat/sync", body, headers, **kwargs)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None, **kwargs: Any) -> ChatResult:
        import asyncio

        return asyncio.run(self.apost(path, body, headers, **kwargs))

    def stream(self, body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> ChatResult:
        return self.post("/chat/stream", body, headers, **kwargs)

    def sync(self, body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> ChatResult:
        return self.post("/chat/sync", body, headers, **kwargs)


@pytest.fixture
def async_db_cleanup() -> Iterator[None]:
    """After the test, close the database connections of asgiref's sync_to_async worker thread (the ORM
    of async views runs there), so the test database can be flushed and dropped without waiting on them."""
    yield
    import asyncio

    from asgiref.sync import sync_to_async
    from django.db import connections

    asyncio.run(sync_to_async(connections.close_all)())


def uses_transactional_db(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        return bool(marker.kwargs.get("transaction", marker.args[0] if marker.args else False))
    return "transactional_db" in request.fixturenames or "live_server" in request.fixturenames


@pytest.fixture
def chat(request, async_db_cleanup) -> ChatClient:
    """Post to /chat/stream, /chat/sync (and other async views) from a sync test and read the events.

    Needs `@pytest.mark.django_db(transaction=True)`: the async views write from a worker thread with its
    own connection, so in a plain `django_db` test those rows are committed for real, never rolled back,
    and leak into the tests that run after it."""
    uses_db = request.node.get_closest_marker("django_db") is not None or {"db", "transactional_db"} & set(
        request.fixturenames
    )
    if uses_db and not uses_transactional_db(request):
        pytest.fail(
            "The `chat` fixture needs @pytest.mark.django_db(transaction=True): the chat views write "
            "from worker threads, whose commits a non-transactional test cannot roll back."
        )
    return ChatClient()


@pytest.fixture
def register_tools() -> Iterator[Callable[..., None]]:
    """Give every agent these tools (core.tools.Tool) for this test, then remove them."""
    from core import tools as tool_registry

    factories: list[Callable] = []

    def register(*tools: Any) -> None:
        def factory(agent: AgentFolder) -> list:
            return list(tools)

        factories.append(factory)
        tool_registry.register_tool_factory(factory)

    yield register
    for factory in factories:
        if factory in tool_registry._tool_factories:
            tool_registry._tool_factories.remove(factory)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, plus: on PostgreSQL, close psycopg's pool (and end sessions that
    worker threads of async tests still hold) before the test database is dropped."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        for connection in connections.all():
            if connection.vendor != "postgresql" or not connection.settings_dict["NAME"].startswith("test_"):
                continue
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            if getattr(connection, "pool", None) is not None:
                connection.close_pool()
