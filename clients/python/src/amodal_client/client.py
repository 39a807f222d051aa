"""The synchronous client, `AmodalClient`. Each method sends one `Call` of amodal_client._operations; the
async client (async_client.py) has the same methods, awaited."""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence
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


class ResponseStream(Generic[T]):
    """A streamed answer, read item by item. The request is sent when the stream is opened: on entering
    `with`, or at the first iteration; an error answer (non-2xx) raises its typed exception then, before any
    item. The response is closed when the items end, when iteration stops early, or on leaving `with`."""

    def __init__(self, http: httpx.Client, request: httpx.Request, reader: LineReader[T]) -> None:
        self._http = http
        self._request = request
        self._reader = reader
        self._response: httpx.Response | None = None
        self._iterated = False

    def open(self) -> None:
        if self._response is not None:
            return
        try:
            response = self._http.send(self._request, stream=True)
        except httpx.TransportError as exc:
            raise wrap(exc, self._request) from exc
        if not response.is_success:
            try:
                body = response.read()
            finally:
                response.close()
            check(response, body)
        self._response = response

    def __iter__(self) -> Iterator[T]:
        if self._iterated:
            raise RuntimeError("A stream is read once: start another request for more.")
        self._iterated = True
        self.open()
        assert self._response is not None
        try:
            for line in self._response.iter_lines():
                item = self._reader.feed(line)
                if item is not None:
                    yield item
                    if self._reader.finished():
                        return
            self._reader.end()
        except httpx.TransportError as exc:
            raise wrap(exc, self._request) from exc
        finally:
            self.close()

    def close(self) -> None:
        if self._response is not None:
            self._response.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class ChatStream(ResponseStream[Event]):
    """The events of one chat message, `init` first and `done` last. Stopping early (leaving the loop or the
    `with` block) closes the connection, which the server takes as the user leaving: it stops the message and
    saves what was produced. `session_id` is known once `init` has been read, `done` once the stream ended."""

    def __init__(self, http: httpx.Client, request: httpx.Request) -> None:
        self._events = EventReader()
        super().__init__(http, request, self._events)

    @property
    def session_id(self) -> str | None:
        return self._events.init.session_id if self._events.init else None

    @property
    def done(self) -> DoneEvent | None:
        return self._events.done


class AmodalClient:
    """A client of one amodal server.

    `token` is an end user's JWT (its claims name the scope) or an API key (`ak_...`, for a SaaS backend),
    sent as `Authorization: Bearer`. `scope_id` is the scope an API key acts in (ignored for a JWT); use
    `with_scope` for another. `http_client` replaces the client's own httpx.Client (e.g. with a
    MockTransport); it is then not closed by `close()`.
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        scope_id: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._config = Config(base_url=base_url, token=token, scope_id=scope_id, headers=dict(headers or {}))
        self._http = http_client if http_client is not None else httpx.Client(timeout=timeout)
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

    def with_scope(self, scope_id: str) -> AmodalClient:
        """The same client acting in `scope_id` (an API key's callers), sharing this one's connections."""
        config = self._config
        return AmodalClient(
            config.base_url, config.token, scope_id=scope_id, headers=config.headers, http_client=self._http
        )

    def _send(self, call: Call[T]) -> T:
        request = self._config.request(self._http, call)
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise wrap(exc, request) from exc
        check(response, response.content)
        return call.parse(response)

    def _stream(self, call: Call[Any], reader: LineReader[T]) -> ResponseStream[T]:
        return ResponseStream(self._http, self._config.request(self._http, call), reader)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class Chat:
    def __init__(self, client: AmodalClient) -> None:
        self._client = client

    def stream(
        self,
        message: str,
        *,
        session_id: str | None = None,
        context: Mapping[str, str] | None = None,
        model: Mapping[str, str] | None = None,
    ) -> ChatStream:
        """`POST /chat/stream`: iterate the returned stream for its typed events (see ChatStream)."""
        client = self._client
        request = client._config.request(client._http, ops.chat_stream(message, session_id, context, model))
        return ChatStream(client._http, request)

    def send(
        self,
        message: str,
        *,
        session_id: str | None = None,
        context: Mapping[str, str] | None = None,
        model: Mapping[str, str] | None = None,
    ) -> ChatResult:
        """`POST /chat/sync`: the whole answer once the message has finished."""
        return self._client._send(ops.chat_send(message, session_id, context, model))

    def cancel(self, session_id: str) -> CancelResult:
        """`POST /sessions/<id>/cancel`: stop the session's running message, from any server process."""
        return self._client._send(ops.cancel(session_id))


class Sessions:
    def __init__(self, client: AmodalClient) -> None:
        self._client = client

    def list(
        self, *, limit: int | None = None, before: str | None = None, tags: Sequence[str] | None = None
    ) -> SessionPage:
        """`GET /sessions/history`: a page of the scope's sessions, newest first."""
        return self._client._send(ops.sessions_list(limit, before, tags))

    def get(self, session_id: str) -> SessionDetail:
        """`GET /sessions/history/<id>`: the session with its messages and feedback."""
        return self._client._send(ops.session_get(session_id))

    def update(self, session_id: str, *, title: str | None = None, tags: Sequence[str] | None = None) -> None:
        """`PATCH /sessions/history/<id>`."""
        self._client._send(ops.session_update(session_id, title, tags))

    def delete(self, session_id: str) -> None:
        """`DELETE /sessions/history/<id>`."""
        self._client._send(ops.session_delete(session_id))

    def feedback(
        self, session_id: str, rating: Literal[1, -1], *, message_id: str | None = None, comment: str | None = None
    ) -> None:
        """`POST /sessions/history/<id>/feedback`: rate the session, or one assistant message (`message_id`,
        e.g. the done event's), 1 or -1; rating the same thing again replaces the rating."""
        self._client._send(ops.feedback(session_id, rating, message_id, comment))


class Stores:
    def __init__(self, client: AmodalClient) -> None:
        self._client = client

    def list(self) -> builtins.list[StoreInfo]:
        """`GET /api/stores`: the agent's stores and the caller's document counts."""
        return self._client._send(ops.stores_list())

    def query(
        self,
        name: str,
        *,
        filter: Mapping[str, Any] | None = None,  # the API's own name for it
        sort: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> DocumentPage:
        """`GET /api/stores/<name>`: documents with field equality `filter`, `sort` ("field" or "-field")."""
        return self._client._send(ops.store_query(name, filter, sort, limit, offset))

    def get(self, name: str, key: str) -> StoreDocument:
        return self._client._send(ops.store_get(name, key))

    def put(self, name: str, key: str, data: Mapping[str, Any]) -> StoreDocument:
        """`PUT /api/stores/<name>/<key>`: create or replace (`created` says which)."""
        return self._client._send(ops.store_put(name, key, data))

    def create(self, name: str, data: Mapping[str, Any]) -> StoreDocument:
        """`POST /api/stores/<name>`: write a document whose key comes from the entity's key template."""
        return self._client._send(ops.store_create(name, data))

    def create_many(self, name: str, documents: Sequence[Mapping[str, Any]]) -> builtins.list[StoreDocument]:
        """`POST /api/stores/<name>` with `documents`: a batch, all or nothing."""
        return self._client._send(ops.store_create_many(name, documents))

    def delete(self, name: str, key: str) -> None:
        self._client._send(ops.store_delete(name, key))


class Memory:
    def __init__(self, client: AmodalClient) -> None:
        self._client = client

    def list(self, *, query: str | None = None) -> MemoryListing:
        """`GET /api/memory`: the scope's entries (with `query`: best matches first, ranked)."""
        return self._client._send(ops.memory_list(query))

    def add(self, content: str) -> MemoryEntry:
        """`POST /api/memory` (`created` False: the same fact was already remembered)."""
        return self._client._send(ops.memory_add(content))

    def delete(self, entry_id: str) -> None:
        self._client._send(ops.memory_delete(entry_id))


class Credentials:
    """Per-scope credentials: only an API key created with `--manage-credentials` may use these."""

    def __init__(self, client: AmodalClient) -> None:
        self._client = client

    def list(self, *, limit: int | None = None, offset: int | None = None) -> CredentialPage:
        return self._client._send(ops.credentials_list(limit, offset))

    def set(self, key: str, value: str) -> Credential:
        """`PUT /api/credentials/<KEY>`; the value is never sent back (`result`: created, replaced, unchanged)."""
        return self._client._send(ops.credential_set(key, value))

    def delete(self, key: str) -> None:
        self._client._send(ops.credential_delete(key))


class Scopes:
    """A scope as a resource: only an API key created with `--manage-scopes`. The global scope's id is ""."""

    def __init__(self, client: AmodalClient) -> None:
        self._client = client

    def get(self, scope_id: str) -> ScopeDetails:
        return self._client._send(ops.scope_get(scope_id))

    def update(
        self, scope_id: str, *, label: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> ScopeDetails:
        """`PUT /api/scopes/<id>`: set the label and/or metadata; a field left out keeps its value."""
        return self._client._send(ops.scope_update(scope_id, label, metadata))

    def export(self, scope_id: str) -> ResponseStream[dict[str, Any]]:
        """`GET /api/scopes/<id>/export`: everything of the scope, one JSON object (with its `kind`) at a time."""
        return self._client._stream(ops.scope_export(scope_id), JsonLinesReader())

    def erase(self, scope_id: str) -> ScopeErased:
        """`DELETE /api/scopes/<id>`: erase everything of the scope. Cannot be undone: export it first."""
        return self._client._send(ops.scope_erase(scope_id))
