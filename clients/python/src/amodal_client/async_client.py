"""The asynchronous client, `AsyncAmodalClient`: the methods of `AmodalClient` (client.py), awaited. Both send
the same `Call`s of amodal_client._operations."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar

import httpx

from amodal_client import _operations as ops
from amodal_client._core import DEFAULT_TIMEOUT, Call, Config, EventReader, JsonLinesReader, LineReader, check
from amodal_client._core import connection_error as wrap
from amodal_client.events import DoneEvent, Event
from amodal_client.models import (
    CancelResult,
    ChatResult,
    Credential,
    CredentialPage,
    DocumentPage,
    MemoryEntry,
    MemoryListing,
    ScopeDetails,
    ScopeErased,
    SessionDetail,
    SessionPage,
    StoreDocument,
    StoreInfo,
)

T = TypeVar("T")


class AsyncResponseStream(Generic[T]):
    """A streamed answer, read item by item with `async for`. The request is sent when the stream is opened:
    on entering `async with`, or at the first iteration; an error answer (non-2xx) raises its typed exception
    then, before any item. The response is closed when the items end or on leaving `async with` (use it when
    a loop may stop early: an abandoned async generator is only closed later, by the event loop)."""

    def __init__(self, http: httpx.AsyncClient, request: httpx.Request, reader: LineReader[T]) -> None:
        self._http = http
        self._request = request
        self._reader = reader
        self._response: httpx.Response | None = None
        self._iterated = False

    async def open(self) -> None:
        if self._response is not None:
            return
        try:
            response = await self._http.send(self._request, stream=True)
        except httpx.TransportError as exc:
            raise wrap(exc, self._request) from exc
        if not response.is_success:
            try:
                body = await response.aread()
            finally:
                await response.aclose()
            check(response, body)
        self._response = response

    async def __aiter__(self) -> AsyncIterator[T]:
        if self._iterated:
            raise RuntimeError("A stream is read once: start another request for more.")
        self._iterated = True
        await self.open()
        assert self._response is not None
        try:
            async for line in self._response.aiter_lines():
                item = self._reader.feed(line)
                if item is not None:
                    yield item
                    if self._reader.finished():
                        return
            self._reader.end()
        except httpx.TransportError as exc:
            raise wrap(exc, self._request) from exc
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()


class AsyncChatStream(AsyncResponseStream[Event]):
    """The events of one chat message, `init` first and `done` last (see `ChatStream`)."""

    def __init__(self, http: httpx.AsyncClient, request: httpx.Request) -> None:
        self._events = EventReader()
        super().__init__(http, request, self._events)

    @property
    def session_id(self) -> str | None:
        return self._events.init.session_id if self._events.init else None

    @property
    def done(self) -> DoneEvent | None:
        return self._events.done


class AsyncAmodalClient:
    """The async twin of `AmodalClient` (same arguments; `http_client` is an httpx.AsyncClient). Close it
    with `await client.aclose()` or `async with`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        scope_id: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = Config(base_url=base_url, token=token, scope_id=scope_id, headers=dict(headers or {}))
        self._http = http_client if http_client is not None else httpx.AsyncClient(timeout=timeout)
        self._owns_http = http_client is None
        self.chat = Chat(self)
        self.sessions = Sessions(self)
        self.stores = Stores(self)
        self.memory = Memory(self)
        self.credentials = Credentials(self)
        self.scopes = Scopes(self)

    @property
    def scope_id(self) -> str | None:
        return self._config.scope_id

    def with_scope(self, scope_id: str) -> AsyncAmodalClient:
        """The same client acting in `scope_id` (an API key's callers), sharing this one's connections."""
        config = self._config
        return AsyncAmodalClient(
            config.base_url, config.token, scope_id=scope_id, headers=config.headers, http_client=self._http
        )

    async def _send(self, call: Call[T]) -> T:
        request = self._config.request(self._http, call)
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise wrap(exc, request) from exc
        check(response, response.content)
        return call.parse(response)

    def _stream(self, call: Call[Any], reader: LineReader[T]) -> AsyncResponseStream[T]:
        return AsyncResponseStream(self._http, self._config.request(self._http, call), reader)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()


class Chat:
    def __init__(self, client: AsyncAmodalClient) -> None:
        self._client = client

    def stream(
        self,
        message: str,
        *,
        session_id: str | None = None,
        context: Mapping[str, str] | None = None,
        model: Mapping[str, str] | None = None,
    ) -> AsyncChatStream:
        """`POST /chat/stream`: `async for` over the returned stream for its typed events (see AsyncChatStream)."""
        client = self._client
        request = client._config.request(client._http, ops.chat_stream(message, session_id, context, model))
        return AsyncChatStream(client._http, request)

    async def send(
        self,
        message: str,
        *,
        session_id: str | None = None,
        context: Mapping[str, str] | None = None,
        model: Mapping[str, str] | None = None,
    ) -> ChatResult:
        """`POST /chat/sync`: the whole answer once the message has finished."""
        return await self._client._send(ops.chat_send(message, session_id, context, model))

    async def cancel(self, session_id: str) -> CancelResult:
        """`POST /sessions/<id>/cancel`: stop the session's running message, from any server process."""
        return await self._client._send(ops.cancel(session_id))


class Sessions:
    def __init__(self, client: AsyncAmodalClient) -> None:
        self._client = client

    async def list(
        self, *, limit: int | None = None, before: str | None = None, tags: Sequence[str] | None = None
    ) -> SessionPage:
        """`GET /sessions/history`: a page of the scope's sessions, newest first."""
        return await self._client._send(ops.sessions_list(limit, before, tags))

    async def get(self, session_id: str) -> SessionDetail:
        """`GET /sessions/history/<id>`: the session with its messages and feedback."""
        return await self._client._send(ops.session_get(session_id))

    async def update(self, session_id: str, *, title: str | None = None, tags: Sequence[str] | None = None) -> None:
        """`PATCH /sessions/history/<id>`."""
        await self._client._send(ops.session_update(session_id, title, tags))

    async def delete(self, session_id: str) -> None:
        """`DELETE /sessions/history/<id>`."""
        await self._client._send(ops.session_delete(session_id))

    async def feedback(
        self, session_id: str, rating: Literal[1, -1], *, message_id: str | None = None, comment: str | None = None
    ) -> None:
        """`POST /sessions/history/<id>/feedback`: rate the session, or one assistant message (`message_id`,
        e.g. the done event's), 1 or -1; rating the same thing again replaces the rating."""
        await self._client._send(ops.feedback(session_id, rating, message_id, comment))


class Stores:
    def __init__(self, client: AsyncAmodalClient) -> None:
        self._client = client

    async def list(self) -> builtins.list[StoreInfo]:
        """`GET /api/stores`: the agent's stores and the caller's document counts."""
        return await self._client._send(ops.stores_list())

    async def query(
        self,
        name: str,
        *,
        filter: Mapping[str, Any] | None = None,  # the API's own name for it
        sort: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> DocumentPage:
        """`GET /api/stores/<name>`: documents with field equality `filter`, `sort` ("field" or "-field")."""
        return await self._client._send(ops.store_query(name, filter, sort, limit, offset))

    async def get(self, name: str, key: str) -> StoreDocument:
        return await self._client._send(ops.store_get(name, key))

    async def put(self, name: str, key: str, data: Mapping[str, Any]) -> StoreDocument:
        """`PUT /api/stores/<name>/<key>`: create or replace (`created` says which)."""
        return await self._client._send(ops.store_put(name, key, data))

    async def create(self, name: str, data: Mapping[str, Any]) -> StoreDocument:
        """`POST /api/stores/<name>`: write a document whose key comes from the entity's key template."""
        return await self._client._send(ops.store_create(name, data))

    async def create_many(self, name: str, documents: Sequence[Mapping[str, Any]]) -> builtins.list[StoreDocument]:
        """`POST /api/stores/<name>` with `documents`: a batch, all or nothing."""
        return await self._client._send(ops.store_create_many(name, documents))

    async def delete(self, name: str, key: str) -> None:
        await self._client._send(ops.store_delete(name, key))


class Memory:
    def __init__(self, client: AsyncAmodalClient) -> None:
        self._client = client

    async def list(self, *, query: str | None = None) -> MemoryListing:
        """`GET /api/memory`: the scope's entries (with `query`: best matches first, ranked)."""
        return await self._client._send(ops.memory_list(query))

    async def add(self, content: str) -> MemoryEntry:
        """`POST /api/memory` (`created` False: the same fact was already remembered)."""
        return await self._client._send(ops.memory_add(content))

    async def delete(self, entry_id: str) -> None:
        await self._client._send(ops.memory_delete(entry_id))


class Credentials:
    """Per-scope credentials: only an API key created with `--manage-credentials` may use these."""

    def __init__(self, client: AsyncAmodalClient) -> None:
        self._client = client

    async def list(self, *, limit: int | None = None, offset: int | None = None) -> CredentialPage:
        return await self._client._send(ops.credentials_list(limit, offset))

    async def set(self, key: str, value: str) -> Credential:
        """`PUT /api/credentials/<KEY>`; the value is never sent back (`result`: created, replaced, unchanged)."""
        return await self._client._send(ops.credential_set(key, value))

    async def delete(self, key: str) -> None:
        await self._client._send(ops.credential_delete(key))


class Scopes:
    """A scope as a resource: only an API key created with `--manage-scopes`. The global scope's id is ""."""

    def __init__(self, client: AsyncAmodalClient) -> None:
        self._client = client

    async def get(self, scope_id: str) -> ScopeDetails:
        return await self._client._send(ops.scope_get(scope_id))

    async def update(
        self, scope_id: str, *, label: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> ScopeDetails:
        """`PUT /api/scopes/<id>`: set the label and/or metadata; a field left out keeps its value."""
        return await self._client._send(ops.scope_update(scope_id, label, metadata))

    def export(self, scope_id: str) -> AsyncResponseStream[dict[str, Any]]:
        """`GET /api/scopes/<id>/export`: everything of the scope, one JSON object (with its `kind`) at a time."""
        return self._client._stream(ops.scope_export(scope_id), JsonLinesReader())

    async def erase(self, scope_id: str) -> ScopeErased:
        """`DELETE /api/scopes/<id>`: erase everything of the scope. Cannot be undone: export it first."""
        return await self._client._send(ops.scope_erase(scope_id))
