"""A local, scripted fake of the Anthropic Messages API for tests.

It serves ``POST /v1/messages`` on 127.0.0.1 in the real wire format (JSON, or SSE when the
body has ``"stream": true``), so the official ``anthropic`` SDK talks to it unchanged::

    with FakeAnthropic() as fake:
        fake.queue_text("Hello world", chunks=3)
        client = anthropic.AsyncAnthropic(base_url=fake.base_url, api_key="test-key", max_retries=0)

Responses are served in the order they were queued. Besides answers and HTTP errors, a stream can be
scripted to fail after some text (``queue_error_mid_stream``, ``queue_stream_fault``: a malformed data
line, a body that ends before ``message_stop``, a dropped connection, a stall). When the queue is empty the fake answers
``DEFAULT_TEXT`` and marks the request ``unscripted`` so a test can detect unexpected calls.
Every request is recorded in ``fake.requests``.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_TEXT = "(fake: no scripted response)"
DEFAULT_MODEL = "claude-fake"
STREAM_FAULTS = {"malformed", "end", "drop", "stall"}
MALFORMED_DATA = '{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": '


class Headers(dict[str, str]):
    """A plain dict of request headers, keyed in lower case, looked up case-insensitively."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__((str(k).lower(), v) for k, v in dict(items).items())

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    json: Any
    unscripted: bool = False
    """True when no scripted response was queued and the default text was served."""
    disconnected: bool = False
    """True when the response was cut short: the client hung up, or the fake was closed mid-response."""
    finished: threading.Event = field(default_factory=threading.Event, repr=False)
    """Set once the server is done with this request (response written or connection lost)."""


@dataclass
class _Scripted:
    """One queued response. Either a message (``content``) or an HTTP error (``status`` != 200)."""

    content: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str = "end_turn"
    usage: dict[str, int] = field(default_factory=dict)
    chunks: int = 3
    delay: float = 0.0
    initial_delay: float = 0.0
    status: int = 200
    error_type: str = ""
    error_message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    error_mid_stream: dict[str, Any] | None = None
    fault: str = ""
    """What goes wrong after the first block's deltas of a stream: "" (nothing), "malformed" (a data line
    that is not JSON), "end" (the body ends before message_stop), "drop" (the connection is closed in
    the middle of the body) or "stall" (``stall_seconds`` of silence, then the rest of the message)."""
    stall_seconds: float = 0.0


class _ClientGone(Exception):
    """The client closed the connection, or the fake is shutting down."""


def _id(prefix: str) -> str:
    return f"{prefix}_fake{uuid.uuid4().hex[:20]}"


def _split(text: str, chunks: int) -> list[str]:
    """Split ``text`` into at most ``chunks`` non-empty consecutive pieces (at least one piece)."""
    if not text:
        return [""]
    chunks = max(1, min(chunks, len(text)))
    size, extra = divmod(len(text), chunks)
    pieces, start = [], 0
    for i in range(chunks):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


class FakeAnthropic:
    """A threaded HTTP server on 127.0.0.1 (free port) scripted like the Messages API."""

    def __init__(self, model: str | None = None) -> None:
        self.model = model
        self.requests: list[RecordedRequest] = []
        self._queue: deque[_Scripted] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeAnthropic:
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake stalled responses and drop open (keep-alive) connections."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        assert self._server is not None, "FakeAnthropic is not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """Pass this as ``base_url`` to ``anthropic.AsyncAnthropic`` / ``anthropic.Anthropic``."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting -------------------------------------------------------------------------------

    def queue_message(
        self,
        content: list[dict[str, Any]],
        *,
        stop_reason: str = "end_turn",
        chunks: int = 3,
        input_tokens: int = 10,
        output_tokens: int = 5,
        cache_read_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        delay: float = 0.0,
        initial_delay: float = 0.0,
    ) -> None:
        """Queue a message whose content blocks are API-shaped dicts.

        ``{"type": "text", "text": ...}`` or ``{"type": "tool_use", "name": ..., "input": {...}}``
        (``id`` optional). Text and tool input are each streamed in up to ``chunks`` deltas.
        ``delay`` seconds pass before every content delta (a stall, for cancellation tests);
        ``initial_delay`` seconds pass before the response headers are sent.
        """
        blocks = []
        for block in content:
            block = dict(block)
            if block["type"] == "tool_use":
                block.setdefault("id", _id("toolu"))
            elif block["type"] != "text":
                raise ValueError(f"unsupported content block type {block['type']!r}")
            blocks.append(block)
        usage = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": cache_creation_input_tokens,
            "cache_read_input_tokens": cache_read_input_tokens,
        }
        self._push(
            _Scripted(
                content=blocks,
                stop_reason=stop_reason,
                usage=usage,
                chunks=chunks,
                delay=delay,
                initial_delay=initial_delay,
            )
        )

    def queue_text(
        self,
        text: str,
        *,
        chunks: int = 3,
        stop_reason: str = "end_turn",
        input_tokens: int = 10,
        output_tokens: int = 5,
        cache_read_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        delay: float = 0.0,
        initial_delay: float = 0.0,
    ) -> None:
        """Queue a text answer, streamed as ``chunks`` text_delta events."""
        self.queue_message(
            [{"type": "text", "text": text}],
            stop_reason=stop_reason,
            chunks=chunks,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_input_tokens=cache_read_input_tokens,
            cache_creation_input_tokens=cache_creation_input_tokens,
            delay=delay,
            initial_delay=initial_delay,
        )

    def queue_tool_use(
        self,
        name: str,
        input: dict[str, Any],
        *,
        text_before: str | None = None,
        id: str | None = None,
        chunks: int = 3,
        input_tokens: int = 10,
        output_tokens: int = 5,
        cache_read_input_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        delay: float = 0.0,
        initial_delay: float = 0.0,
    ) -> str:
        """Queue a tool call (stop_reason ``tool_use``); returns the ``toolu_...`` id used."""
        tool_id = id or _id("toolu")
        content: list[dict[str, Any]] = []
        if text_before:
            content.append({"type": "text", "text": text_before})
        content.append({"type": "tool_use", "id": tool_id, "name": name, "input": input})
        self.queue_message(
            content,
            stop_reason="tool_use",
            chunks=chunks,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_input_tokens=cache_read_input_tokens,
            cache_creation_input_tokens=cache_creation_input_tokens,
            delay=delay,
            initial_delay=initial_delay,
        )
        return tool_id

    def queue_stalled(
        self,
        text: str = "stalled response",
        *,
        chunks: int = 5,
        delay: float = 1.0,
        initial_delay: float = 0.0,
    ) -> None:
        """Queue a text answer that sleeps ``delay`` seconds before each delta."""
        self.queue_text(text, chunks=chunks, delay=delay, initial_delay=initial_delay)

    def queue_error(
        self,
        status: int = 429,
        error_type: str = "rate_limit_error",
        message: str = "Rate limited",
        *,
        retry_after: str | None = None,
        retry_after_ms: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Queue an HTTP error with the real body ``{"type":"error","error":{...}}``.

        Note: the SDK ignores ``retry-after: 0`` (it only honours 0 < value <= 60) and then
        backs off ~0.4-0.5 s; ``retry_after_ms="1"`` makes the retry wait about 1 ms.
        """
        extra = dict(headers or {})
        if retry_after is not None:
            extra["retry-after"] = retry_after
        if retry_after_ms is not None:
            extra["retry-after-ms"] = retry_after_ms
        self._push(_Scripted(status=status, error_type=error_type, error_message=message, headers=extra))

    def queue_http_500(self, message: str = "Internal server error") -> None:
        self.queue_error(500, "api_error", message)

    def queue_overloaded_mid_stream(self, text_before: str = "partial", *, chunks: int = 2) -> None:
        """Stream message_start and some text, then ``event: error`` (overloaded_error) and end.

        A non-streaming request gets what the API sends instead: HTTP 529 overloaded_error.
        """
        self.queue_error_mid_stream(text_before, error_type="overloaded_error", message="Overloaded", chunks=chunks)

    def queue_error_mid_stream(
        self,
        text_before: str = "partial",
        *,
        error_type: str = "api_error",
        message: str = "Internal server error",
        chunks: int = 2,
    ) -> None:
        """Stream message_start and some text, then ``event: error`` of ``error_type`` and end: what the
        API sends when it fails after the response has started (an `api_error` is its 500).

        A non-streaming request gets HTTP 529 (the status is only a placeholder for "failed")."""
        self._push(
            _Scripted(
                content=[{"type": "text", "text": text_before}],
                usage={"input_tokens": 10, "output_tokens": 1},
                chunks=chunks,
                status=200,
                error_type=error_type,
                error_message=message,
                error_mid_stream=_error_body(error_type, message),
            )
        )

    def queue_stream_fault(
        self,
        fault: str,
        text_before: str = "partial",
        *,
        chunks: int = 2,
        stall_seconds: float = 30.0,
        input_tokens: int = 10,
        output_tokens: int = 5,
    ) -> None:
        """Stream message_start and ``text_before`` in ``chunks`` deltas, then go wrong (streams only; a
        non-streaming request gets the whole message):

        - ``"malformed"``: an ``event: content_block_delta`` whose data line is not JSON, then the end;
        - ``"end"``: the body ends cleanly (last chunk sent) with no content_block_stop, message_delta or
          message_stop, as when a proxy cuts a long response;
        - ``"drop"``: the connection is closed in the middle of the chunked body;
        - ``"stall"``: ``stall_seconds`` of silence (a client that times out hangs up and the fake notices),
          then the rest of the message.
        """
        if fault not in STREAM_FAULTS:
            raise ValueError(f"unknown stream fault {fault!r}; one of {sorted(STREAM_FAULTS)}")
        self._push(
            _Scripted(
                content=[{"type": "text", "text": text_before}],
                usage={"input_tokens": input_tokens, "output_tokens": output_tokens},
                chunks=chunks,
                fault=fault,
                stall_seconds=stall_seconds,
            )
        )

    # -- inspection ------------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """How many queued responses have not been served yet."""
        with self._lock:
            return len(self._queue)

    def discard_pending(self) -> int:
        """Drop the queued responses not served yet (left over when a client retried fewer times than
        scripted); returns how many were dropped."""
        with self._lock:
            dropped = len(self._queue)
            self._queue.clear()
            return dropped

    @property
    def unscripted_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.unscripted]

    def message_requests(self) -> list[RecordedRequest]:
        """Recorded ``POST /v1/messages`` requests, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.method == "POST" and r.path == "/v1/messages"]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``count`` requests were recorded; raise TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= count, timeout=timeout):
                raise TimeoutError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)

    def assert_all_consumed(self) -> None:
        """Fail if scripted responses are left over or an unscripted request was answered."""
        with self._lock:
            pending, unscripted = len(self._queue), [r for r in self.requests if r.unscripted]
        assert pending == 0, f"{pending} scripted response(s) were never requested"
        assert not unscripted, f"{len(unscripted)} unexpected request(s): {[r.json for r in unscripted]}"

    # -- internals used by the handler -----------------------------------------------------------

    def _push(self, scripted: _Scripted) -> None:
        with self._lock:
            self._queue.append(scripted)

    def _record(self, request: RecordedRequest, take_scripted: bool) -> _Scripted | None:
        with self._changed:
            scripted = None
            if take_scripted:
                if self._queue:
                    scripted = self._queue.popleft()
                else:
                    request.unscripted = True
            self.requests.append(request)
            self._changed.notify_all()
            return scripted

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked SSE, as the real API
    server_version = "FakeAnthropic/1.0"

    @property
    def fake(self) -> FakeAnthropic:
        return self.server.fake  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, add=True)

    def finish(self) -> None:
        self.fake._track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, _ClientGone):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    # -- routing ---------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        request = RecordedRequest(
            method=self.command,
            path=path,
            query=query,
            headers=Headers(self.headers.items()),
            body=body,
            json=parsed,
        )
        is_messages = self.command == "POST" and path == "/v1/messages"
        scripted = self.fake._record(request, take_scripted=is_messages)
        try:
            if not is_messages:
                self._send_json(404, _error_body("not_found_error", f"Not found: {self.command} {path}"))
            elif not isinstance(parsed, dict):
                self._send_json(400, _error_body("invalid_request_error", "Body is not a JSON object"))
            else:
                self._respond(scripted or _Scripted(content=[{"type": "text", "text": DEFAULT_TEXT}]), parsed)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, _ClientGone):
            request.disconnected = True
            self.close_connection = True
        finally:
            request.finished.set()

    def _respond(self, scripted: _Scripted, body: dict[str, Any]) -> None:
        self._pause(scripted.initial_delay)
        if scripted.status != 200:
            self._send_json(scripted.status, _error_body(scripted.error_type, scripted.error_message), scripted.headers)
            return
        model = self.fake.model or body.get("model") or DEFAULT_MODEL
        if body.get("stream"):
            self._stream(scripted, model)
        elif scripted.error_mid_stream is not None:
            self._send_json(529, _error_body(scripted.error_type, scripted.error_message))
        else:
            self._pause(scripted.delay * scripted.chunks)
            self._send_json(200, self._message(scripted, model, final=True))

    # -- message shapes --------------------------------------------------------------------------

    def _message(self, scripted: _Scripted, model: str, final: bool) -> dict[str, Any]:
        usage = {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        } | scripted.usage
        if not final:
            usage["output_tokens"] = 1  # message_start carries a provisional count, as the API does
        return {
            "id": _id("msg"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": scripted.content if final else [],
            "stop_reason": scripted.stop_reason if final else None,
            "stop_sequence": None,
            "usage": usage,
        }

    def _stream(self, scripted: _Scripted, model: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("request-id", _id("req"))
        self.end_headers()

        start = self._message(scripted, model, final=False)
        self._event("message_start", {"type": "message_start", "message": start})
        for index, block in enumerate(scripted.content):
            if block["type"] == "text":
                opening: dict[str, Any] = {"type": "text", "text": ""}
                pieces = _split(block["text"], scripted.chunks)
                deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
            else:
                opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                pieces = [""] + _split(json.dumps(block["input"]), scripted.chunks)  # the API opens with ""
                deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces]
            start_event = {"type": "content_block_start", "index": index, "content_block": opening}
            self._event("content_block_start", start_event)
            if index == 0:
                self._event("ping", {"type": "ping"})
            for delta in deltas:
                self._pause(scripted.delay)
                self._event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
            if scripted.error_mid_stream is not None:
                self._event("error", scripted.error_mid_stream)
                self._end_chunks()
                return
            if index == 0 and scripted.fault and self._fault(scripted):
                return
            self._event("content_block_stop", {"type": "content_block_stop", "index": index})
        self._event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": scripted.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": scripted.usage.get("output_tokens", 5)},
            },
        )
        self._event("message_stop", {"type": "message_stop"})
        self._end_chunks()

    def _fault(self, scripted: _Scripted) -> bool:
        """Do the scripted fault; True when the response is over."""
        if scripted.fault == "malformed":
            self._raw_frame(f"event: content_block_delta\ndata: {MALFORMED_DATA}\n\n".encode())
            self._end_chunks()
            return True
        if scripted.fault == "end":
            self._end_chunks()
            return True
        if scripted.fault == "drop":
            self.wfile.flush()
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            raise _ClientGone
        self._pause(scripted.stall_seconds)  # "stall"
        return False

    # -- wire helpers ----------------------------------------------------------------------------

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", _id("req"))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _event(self, event: str, data: dict[str, Any]) -> None:
        self._raw_frame(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

    def _raw_frame(self, frame: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        self.wfile.flush()

    def _end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake up early when the fake closes or the client hangs up."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            if self.fake._closing.wait(min(remaining, 0.02)) or self._client_gone():
                raise _ClientGone
        if self.fake._closing.is_set():
            raise _ClientGone

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True
