"""Tools for fault drills against live servers: a TCP proxy whose connections can be cut (a database
that goes away), an HTTP endpoint that holds its answer until released (a slow tool), and an event
stream read in a thread with the arrival time of each frame (for a stream whose server is killed), and
many conversations streamed at once with async httpx (for drills under load against the cluster)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import httpx

from tests.e2e.helpers import Frame, iter_frames, parse_frame, text_of

BUFFER_BYTES = 65536
ACCEPT_POLL_SECONDS = 0.05
UPSTREAM_CONNECT_SECONDS = 5.0


def reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0) after waking any thread blocked on the socket (shutdown)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """A TCP proxy on 127.0.0.1 (a free port) in front of `upstream` (host, port), in threads.

    `cut()` resets every open connection (both ends) and resets each new one as soon as it is accepted,
    so a client's next read or write on a pooled connection fails at once, and so does a new connect;
    `restore()` forwards again. `accepted` counts the connections taken, `refused` those reset while cut.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.accepted = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._cut = threading.Event()
        self._closing = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(ACCEPT_POLL_SECONDS)
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)

    @property
    def port(self) -> int:
        return self._listener.getsockname()[1]

    @property
    def is_cut(self) -> bool:
        return self._cut.is_set()

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            sockets, self._open = list(self._open), set()
        for sock in sockets:
            reset(sock)

    def restore(self) -> None:
        self._cut.clear()

    def close(self) -> None:
        self._closing.set()
        self.cut()
        self._thread.join(5)
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- threads -----------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._take(client)

    def _take(self, client: socket.socket) -> None:
        if self._cut.is_set():
            self.refused += 1
            reset(client)
            return
        try:
            server = socket.create_connection(self.upstream, timeout=UPSTREAM_CONNECT_SECONDS)
        except OSError:
            reset(client)
            return
        server.settimeout(None)
        with self._lock:
            self.accepted += 1
            self._open.update((client, server))
        for source, target in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(source, target), name="tcp-proxy-pump", daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(BUFFER_BYTES):
                target.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._open.discard(source)
            self._open.discard(target)
        reset(source)
        reset(target)


# --- an HTTP endpoint that answers when released -------------------------------------------------------


class GatedEndpoint:
    """An HTTP server on 127.0.0.1 whose every GET waits for `release` (at most `hold_seconds`), then
    answers 200 `{"released": true}`. `arrived` is set when a request has come in."""

    def __init__(self, hold_seconds: float = 30.0) -> None:
        self.hold_seconds = hold_seconds
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.paths: list[str] = []
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate.paths.append(self.path)
                gate.arrived.set()
                released = gate.release.wait(gate.hold_seconds)
                body = json.dumps({"released": released}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def rearm(self) -> None:
        """Ready for the next drill: hold the next request again."""
        self.arrived.clear()
        self.release.clear()

    def __enter__(self) -> GatedEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


# --- an event stream read in a thread ---------------------------------------------------------------------


@dataclass
class TimedFrame:
    frame: Frame
    received_at: float  # time.monotonic()


@dataclass
class StreamReader:
    """POST a chat message and read its event stream in a thread, timing each frame's arrival. The read
    ends at the end of the stream or when the connection breaks (`error` then holds the exception)."""

    base_url: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int | None = None
    frames: list[TimedFrame] = field(default_factory=list)
    error: BaseException | None = None
    finished: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> StreamReader:
        threading.Thread(target=self._read, name="stream-reader", daemon=True).start()
        return self

    def _read(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(30.0, connect=5.0), trust_env=False) as c,
                c.stream("POST", "/chat/stream", json=self.body, headers=self.headers) as response,
            ):
                self.status = response.status_code
                for frame in iter_frames(response):
                    with self._lock:
                        self.frames.append(TimedFrame(frame, time.monotonic()))
        except (httpx.HTTPError, AssertionError) as exc:
            self.error = exc
        finally:
            self.finished.set()

    def snapshot(self) -> list[TimedFrame]:
        with self._lock:
            return list(self.frames)

    def events(self) -> list[dict[str, Any]]:
        return [timed.frame.event for timed in self.snapshot() if timed.frame.event is not None]

    def deltas(self) -> list[TimedFrame]:
        return [timed for timed in self.snapshot() if timed.frame.type == "text_delta"]

    def session_id(self) -> str | None:
        events = self.events()
        return events[0]["session_id"] if events and events[0]["type"] == "init" else None


@contextmanager
def running(*readers: StreamReader) -> Iterator[tuple[StreamReader, ...]]:
    """Start the readers; at the end wait (bounded) for their threads to finish."""
    for reader in readers:
        reader.start()
    try:
        yield readers
    finally:
        for reader in readers:
            reader.finished.wait(15)


# --- many conversations at once (async) --------------------------------------------------------------------


@dataclass
class Conversation:
    """One chat message streamed by `converse`: the answer's status, its frames (each checked against
    the event schema), and how the stream broke if it did."""

    index: int
    headers: dict[str, str]
    message: str
    session_id: str | None = None  # an existing session to continue
    status: int | None = None
    body: bytes = b""  # the answer's body when it was not 200
    frames: list[Frame] = field(default_factory=list)
    error: BaseException | None = None  # how the stream broke, if it did
    finished: bool = False

    @property
    def events(self) -> list[dict[str, Any]]:
        return [frame.event for frame in self.frames if frame.event is not None]

    @property
    def types(self) -> list[str]:
        return [event["type"] for event in self.events]

    @property
    def words(self) -> list[str]:
        return text_of(self.events).split()

    @property
    def ended_with_done(self) -> bool:
        return bool(self.events) and self.events[-1]["type"] == "done"

    def started_session(self) -> str:
        assert self.events and self.events[0]["type"] == "init", (self.index, self.status, self.events[:1])
        return str(self.events[0]["session_id"])


async def converse(client: httpx.AsyncClient, conversation: Conversation) -> None:
    """POST the conversation's message to /chat/stream and read its frames until the stream ends or breaks
    (an httpx error is kept in `conversation.error`, a malformed frame fails the test)."""
    body: dict[str, Any] = {"message": conversation.message}
    if conversation.session_id:
        body["session_id"] = conversation.session_id
    try:
        async with client.stream("POST", "/chat/stream", json=body, headers=conversation.headers) as response:
            conversation.status = response.status_code
            if response.status_code != 200:
                conversation.body = await response.aread()
                return
            buffer = ""
            read_index = 0
            async for chunk in response.aiter_text():
                buffer += chunk
                while "\n\n" in buffer:
                    raw, buffer = buffer.split("\n\n", 1)
                    conversation.frames.append(parse_frame(raw, read_index))
                read_index += 1
            assert buffer == "", f"the stream ended inside a frame: {buffer!r}"
    except httpx.HTTPError as exc:
        conversation.error = exc
    finally:
        conversation.finished = True


def async_client(base_url: str, connections: int, read_seconds: float = 30.0) -> httpx.AsyncClient:
    """An async client for `connections` concurrent streams; a stream silent `read_seconds` breaks with
    a ReadTimeout (a hang is an error, never a wait without end)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(read_seconds, connect=10.0)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout, trust_env=False)


async def converse_all(base_url: str, conversations: list[Conversation], deadline_seconds: float = 120.0) -> None:
    """Stream every conversation at once; fails if one has not ended within the deadline."""
    async with async_client(base_url, len(conversations) + 4) as client:
        tasks = [asyncio.create_task(converse(client, conversation)) for conversation in conversations]
        done, pending = await asyncio.wait(tasks, timeout=deadline_seconds)
        for task in pending:
            task.cancel()
        assert not pending, f"{len(pending)} of {len(tasks)} streams had not ended within {deadline_seconds:g} s"
        for task in done:
            task.result()


async def converse_through_a_fault(
    base_url: str,
    conversations: list[Conversation],
    fault: Callable[[], Awaitable[None]],
    *,
    words_before: int,
    what: str,
    read_seconds: float,
    deadline_seconds: float,
) -> None:
    """Stream every conversation at once, run `fault` (`what`: "the kill", "the cut") once each has streamed
    `words_before` words, then wait for every stream to end. Fails if one ends before the fault or any has not
    ended by the deadline (counted from the start)."""
    async with async_client(base_url, len(conversations) + 4, read_seconds) as client:
        tasks = [asyncio.create_task(converse(client, conversation)) for conversation in conversations]
        deadline = time.monotonic() + deadline_seconds
        while not all(len(c.words) >= words_before for c in conversations):
            ended = [c for c in conversations if c.finished]
            assert not ended, f"a stream ended before {what}: {[(c.status, c.error, c.events[-1:]) for c in ended]}"
            assert time.monotonic() < deadline, f"the streams did not all reach {what}"
            await asyncio.sleep(0.05)
        await fault()
        done, pending = await asyncio.wait(tasks, timeout=max(deadline - time.monotonic(), 1))
        for task in pending:
            task.cancel()
        hung = [c.index for c in conversations if not c.finished]
        assert not pending and not hung, f"{len(hung)} streams did not end after {what}: {hung}"
        for task in done:
            task.result()


class SavedMessage(NamedTuple):
    seq: int
    role: str
    interrupted: bool
    text: str
    error_code: str
    usage_rows: int


def saved_messages(database: Any, session_ids: list[str]) -> dict[str, list[SavedMessage]]:
    """With SQL, the drill's sessions' messages in order, by session id (a LiveDatabase's `uuid_param` form),
    each with the count of its usage rows."""
    rows = database.query(
        "SELECT m.session_id::text, m.seq, m.role, m.interrupted, m.text, m.error_code,"
        " (SELECT count(*) FROM agents_usagerecord u WHERE u.message_id = m.id)"
        " FROM agents_message m WHERE m.session_id::text = ANY(%s) ORDER BY m.session_id, m.seq",
        (session_ids,),
    )
    by_session: dict[str, list[SavedMessage]] = {}
    for session_id, *row in rows:
        by_session.setdefault(session_id, []).append(SavedMessage(*row))
    return by_session
