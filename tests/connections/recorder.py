"""A recording HTTP server for connection tests.

`Recorder` runs a `ThreadingHTTPServer` on 127.0.0.1 and a free port. It records every request exactly
as received (method, raw request target, parsed path and query, headers, body bytes and parsed JSON)
and answers JSON by default: `{"ok": true, "method": ..., "path": ...}`. Per path (the raw path without
the query string) it can be programmed with `route(path, status=, body=, headers=, delay=, echo=)`:

- `body`: a dict/list (sent as JSON), a str or bytes (sent as given);
- `headers`: extra response headers (e.g. `{"Location": "http://..."}` for a redirect);
- `delay`: seconds to wait before answering (bounded; cut short when the server stops);
- `echo=True`: answer with the request as received (method, target, headers, body) in the JSON body;
- `trickle=(pieces, seconds)`: send the body in pieces with a pause after each (a slow or stalled body).

Nothing here has unbounded waits: every socket has a timeout and `stop()` joins with a timeout.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SOCKET_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    target: str  # the request target exactly as sent on the request line (path and query)
    headers: dict[str, str]  # as received; lookups through header() are case-insensitive
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def text(self) -> str:
        """Everything received, for "the secret was not sent" style assertions."""
        lines = [f"{self.method} {self.target}", *(f"{k}: {v}" for k, v in self.headers.items())]
        return "\n".join(lines) + "\n\n" + self.body.decode("utf-8", errors="replace")


@dataclass
class Route:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    echo: bool = False
    trickle: tuple[int, float] | None = None  # (pieces, seconds between them): a slow body


class Recorder:
    def __init__(self, name: str = "api") -> None:
        self.name = name
        self.requests: list[RecordedRequest] = []
        self.routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.timeout = SOCKET_TIMEOUT_SECONDS
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"recorder-{name}-{self.port}",
            daemon=True,
        )

    # --- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # cuts programmed delays short
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(STOP_TIMEOUT_SECONDS)

    # --- programming and reading ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        return self.base_url + path

    def route(
        self,
        path: str,
        *,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        echo: bool = False,
        trickle: tuple[int, float] | None = None,
    ) -> None:
        self.routes[path] = Route(status, body, dict(headers or {}), delay, echo, trickle)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.route(path, status=status, body="", headers={"Location": location})

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    @property
    def received(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.requests)

    def only(self) -> RecordedRequest:
        """The single request received (fails when there were none or several)."""
        received = self.received
        assert len(received) == 1, f"{self.name} expected exactly one request, got {[r.target for r in received]}"
        return received[0]

    def all_text(self) -> str:
        return "\n\n".join(request.text for request in self.received)

    # --- the handler ----------------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = SOCKET_TIMEOUT_SECONDS

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
                pass  # quiet: test output stays readable

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = RecordedRequest(self.command, self.path, dict(self.headers.items()), body)
                with recorder._lock:
                    recorder.requests.append(request)
                route = recorder.routes.get(request.path, Route())
                if route.delay:
                    recorder._stopping.wait(route.delay)
                if route.echo:
                    payload: Any = {
                        "method": request.method,
                        "target": request.target,
                        "headers": request.headers,
                        "body": body.decode("utf-8", errors="replace"),
                    }
                elif route.body is None:
                    payload = {"ok": True, "method": request.method, "path": request.path}
                else:
                    payload = route.body
                if isinstance(payload, bytes):
                    data, content_type = payload, "application/octet-stream"
                elif isinstance(payload, str):
                    data, content_type = payload.encode(), "text/plain; charset=utf-8"
                else:
                    data, content_type = json.dumps(payload).encode(), "application/json"
                try:
                    self.send_response(route.status)
                    headers = {"Content-Type": content_type, **route.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command == "HEAD":
                        return
                    if route.trickle is None:
                        self.wfile.write(data)
                        return
                    pieces, interval = route.trickle
                    size = max(1, -(-len(data) // pieces))
                    for start in range(0, len(data), size):
                        self.wfile.write(data[start : start + size])
                        self.wfile.flush()
                        if recorder._stopping.wait(interval):
                            return
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. its read timed out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        return Handler
