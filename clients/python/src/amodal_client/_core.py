"""What the sync and async clients share: the description of a call (`Call`), building its httpx request,
turning an error answer into an exception, and reading streamed lines into items. The two clients only
send: each of their methods is a few lines that hand a `Call` from amodal_client._operations to their
transport, so the logic lives once, here and there."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

import httpx

from amodal_client.errors import APIConnectionError, ProtocolError, error_from_response
from amodal_client.events import DoneEvent, Event, InitEvent, parse_event
from amodal_client.sse import SSEDecoder

__version__ = "0.1.0"

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

# Connect quickly; a read may wait long: /chat/sync answers only when the agent has finished, and a quiet
# stream sends a keep-alive comment every 15 s.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0, read=300.0)
USER_AGENT = f"amodal-client-python/{__version__}"

# Where a call puts the client's `scope_id` (for API-key callers; a JWT's claims decide its own scope):
# the JSON body of the chat endpoints, the query string of the REST views, nowhere for a URL that names it.
ScopePlace = Literal["body", "query", "none"]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API operation: what to send and how to read a 2xx answer (`parse` gets the response, read)."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    scope: ScopePlace = "query"
    accept: str = "application/json"


@dataclass(frozen=True)
class Config:
    base_url: str
    token: str | None
    scope_id: str | None
    headers: Mapping[str, str]

    def request(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        params = dict(call.params)
        body = None if call.body is None else dict(call.body)
        if self.scope_id is not None and call.scope == "query":
            params.setdefault("scope_id", self.scope_id)
        if self.scope_id is not None and call.scope == "body":
            body = {"scope_id": self.scope_id, **(body or {})}
        headers = {"User-Agent": USER_AGENT, "Accept": call.accept, **self.headers}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return http.build_request(
            call.method, self.base_url.rstrip("/") + call.path, params=params or None, json=body, headers=headers
        )


def check(response: httpx.Response, body: bytes) -> None:
    """Raise the typed exception for a non-2xx answer (its body already read)."""
    if not response.is_success:
        raise error_from_response(response, body)


def connection_error(exc: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    return APIConnectionError(f"{request.method} {request.url.path}: {type(exc).__name__}: {exc or 'no detail'}")


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise ProtocolError(
            f"The answer to {response.request.method} {response.request.url.path} is not JSON.",
            status=response.status_code,
        ) from None


def reads(parse: Callable[[object], T]) -> Callable[[httpx.Response], T]:
    """A response parser from a JSON parser."""
    return lambda response: parse(json_body(response))


def created(parse: Callable[..., T]) -> Callable[[httpx.Response], T]:
    """A response parser for a write whose 201 means "created" (200: replaced)."""
    return lambda response: parse(json_body(response), created=response.status_code == 201)


def ok(response: httpx.Response) -> None:
    json_body(response)  # `{"ok": true}`: the status said it all, but the body must still be JSON


# --- streamed answers --------------------------------------------------------------------------------------


class LineReader(Protocol[T_co]):
    """Reads a streamed answer line by line: `feed` returns the item a line completes, `end` is called when
    the body ends and raises if it ended too soon."""

    def feed(self, line: str) -> T_co | None: ...

    def finished(self) -> bool: ...

    def end(self) -> None: ...


class EventReader:
    """The chat event stream: SSE frames to typed events, up to and including `done`."""

    def __init__(self) -> None:
        self.decoder = SSEDecoder()
        self.init: InitEvent | None = None
        self.done: DoneEvent | None = None

    def feed(self, line: str) -> Event | None:
        data = self.decoder.feed(line)
        if data is None:
            return None
        event = parse_event(data)
        if isinstance(event, InitEvent) and self.init is None:
            self.init = event
        if isinstance(event, DoneEvent):
            self.done = event
        return event

    def finished(self) -> bool:
        return self.done is not None

    def end(self) -> None:
        if self.done is None:
            raise ProtocolError("The event stream ended before its done event.")


class JsonLinesReader:
    """A JSON Lines body (a scope's export): one JSON object a line."""

    def __init__(self) -> None:
        self.count = 0

    def feed(self, line: str) -> dict[str, Any] | None:
        if not line.strip():
            return None
        try:
            item = json.loads(line)
        except ValueError:
            raise ProtocolError(f"Line {self.count + 1} of the export is not JSON: {line!r:.200}") from None
        if not isinstance(item, dict):
            raise ProtocolError(f"Line {self.count + 1} of the export is not a JSON object.")
        self.count += 1
        return item

    def finished(self) -> bool:
        return False

    def end(self) -> None:
        return None
