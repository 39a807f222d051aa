"""Slow and stalled clients against daphne with the flags of `make run` (README "Production").

What daphne 4 / Twisted do, and why the Makefile sets no `--http-timeout`:
- Twisted closes a connection that sends no byte for 60 s while its request is incomplete (the request
  idle timeout of twisted.web's HTTPFactory; daphne has no flag for it). A client that trickles a byte
  now and then is not stopped: that needs a proxy in front (nginx `client_header_timeout`).
- `--http-timeout N` starts only once the whole request has arrived, and then ends any response still
  running after N seconds, the event stream included (it sends the final chunk, as if the stream were
  done). The second test pins both facts, so a daphne that changes them is noticed.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator

import pytest

from tests.e2e.helpers import check_stream, events_of, iter_frames, text_of
from tests.e2e.live import REPO_ROOT, LiveServer, start_server

pytestmark = pytest.mark.live

TWISTED_REQUEST_IDLE_SECONDS = 60
CHECK_MARGIN_SECONDS = 10
PARTIAL_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def makefile_daphne_flags() -> tuple[str, ...]:
    match = re.search(r"^DAPHNE_FLAGS := (.+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert match, "the Makefile defines DAPHNE_FLAGS for `make run`"
    return tuple(match.group(1).split())


@pytest.fixture
def server_with(live_database, tmp_path) -> Iterator:
    servers: list[LiveServer] = []

    def start(*daphne_args: str) -> LiveServer:
        servers.append(start_server(live_database, tmp_path, daphne_args=daphne_args))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def open_partial_request(server: LiveServer) -> socket.socket:
    """A connection that sent the start of a request and then nothing more."""
    connection = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    connection.sendall(PARTIAL_REQUEST)
    return connection


def closed_by_server(connection: socket.socket, *, within: float) -> float | None:
    """Seconds until the server closed the connection (end of file or reset), or None if still open."""
    start = time.monotonic()
    connection.settimeout(1.0)
    while time.monotonic() - start < within:
        try:
            if connection.recv(1024) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except ConnectionResetError:
            return time.monotonic() - start
    return None


def stream(server: LiveServer, message: str) -> list[dict]:
    headers = server.headers("household-garcia", {"household_id": "household-garcia"})
    with (
        server.client() as client,
        client.stream("POST", "/chat/stream", json={"message": message}, headers=headers) as response,
    ):
        assert response.status_code == 200
        return events_of(list(iter_frames(response)))


def test_make_run_flags_close_a_stalled_request_and_keep_streams(server_with):
    server = server_with(*makefile_daphne_flags())
    stalled = open_partial_request(server)
    opened = time.monotonic()
    try:
        events = stream(server, "/slow 400 one two three four five six seven eight")
        check_stream(events)
        assert text_of(events) == "one two three four five six seven eight"
        elapsed = closed_by_server(stalled, within=TWISTED_REQUEST_IDLE_SECONDS + CHECK_MARGIN_SECONDS)
        assert elapsed is not None, "a request that stops half-way is not kept open forever"
        assert time.monotonic() - opened >= TWISTED_REQUEST_IDLE_SECONDS - 1
    finally:
        stalled.close()
    with server.client() as client:
        assert client.get("/health").status_code == 200


def test_http_timeout_ignores_incomplete_requests_and_cuts_streams(server_with):
    server = server_with("--http-timeout", "2")
    stalled = open_partial_request(server)
    try:
        events = stream(server, "/slow 600 " + " ".join(f"w{i}" for i in range(10)))  # 6 s of words
        assert events[0]["type"] == "init"
        assert "done" not in [event["type"] for event in events], "the stream was cut, not finished"
        assert len(text_of(events).split()) < 10
        assert closed_by_server(stalled, within=2.0) is None, "the incomplete request is still open"
    finally:
        stalled.close()
