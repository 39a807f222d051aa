"""The benchmark's client: one POST of an event stream, read frame by frame, and the JWTs it carries.

Only the public HTTP API is used (`POST /chat/stream` with a bearer JWT, `session_id` to continue a
session), so the benchmark measures any engine behind it the same way.
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

from benchmarks.http_client import Client, HttpError
from benchmarks.server import BenchServer

STREAM_TIMEOUT_SECONDS = 300.0
CHAT_PATH = "/chat/stream"
BARE_PATH = "/bench/bare-sse"


@dataclass
class StreamResult:
    seconds: float  # send to the end of the response
    first_frame_seconds: float | None = None
    done_seconds: float | None = None  # send to the `done` frame
    frames: list[dict[str, Any]] = field(default_factory=list)
    problem: str = ""  # "" when the stream was complete and as expected

    @property
    def ok(self) -> bool:
        return not self.problem

    @property
    def text(self) -> str:
        return "".join(f.get("content", "") for f in self.frames if f.get("type") == "text_delta")

    @property
    def session_id(self) -> str:
        first = self.first("init")
        return str(first.get("session_id", "")) if first else ""

    def first(self, type_: str) -> dict[str, Any] | None:
        return next((f for f in self.frames if f.get("type") == type_), None)


def problem_in_frames(frames: list[dict[str, Any]]) -> str:
    if not frames:
        return "empty stream"
    if frames[0].get("type") != "init":
        return f"first frame is {frames[0].get('type')!r}, not init"
    errors = [f for f in frames if f.get("type") == "error"]
    if errors:
        return f"error event {errors[0].get('code')}"
    if frames[-1].get("type") != "done":
        return "stream ended without done"
    if frames[-1].get("reason") != "model_stop":
        return f"done reason {frames[-1].get('reason')}"
    return ""


def error_kind(raw: bytes) -> str:
    """The error code of a JSON error body, else what a non-JSON body (Django's 500 page) says."""
    try:
        return str(json.loads(raw)["error"]["code"])
    except (ValueError, KeyError, TypeError):
        pass
    text = raw.decode("utf-8", "replace")
    title = re.search(r"<title>\s*(.*?)\s*</title>", text, re.DOTALL)
    summary = " ".join((title.group(1) if title else text).split())[:100]
    return f"non-JSON body: {summary}"


class FrameReader:
    """Splits the response text into `data:` frames and notes when the first one and `done` arrived."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.buffer = ""
        self.frames: list[dict[str, Any]] = []
        self.first_frame: float | None = None
        self.done: float | None = None

    def feed(self, chunk: str) -> None:
        self.buffer += chunk
        while "\n\n" in self.buffer:
            block, self.buffer = self.buffer.split("\n\n", 1)
            for line in block.splitlines():
                if line.startswith("data: "):
                    self.add(json.loads(line[len("data: ") :]))

    def add(self, item: dict[str, Any]) -> None:
        now = time.perf_counter() - self.started
        if self.first_frame is None:
            self.first_frame = now
        if item.get("type") == "done":
            self.done = now
        self.frames.append(item)


async def run_stream(
    client: Client, path: str, *, headers: dict[str, str], body: dict[str, Any], timeout: float = STREAM_TIMEOUT_SECONDS
) -> StreamResult:
    started = time.perf_counter()
    reader = FrameReader(started)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        async with asyncio.timeout(timeout), client.post(path, body, headers) as response:
            if response.status != 200:
                raw = await response.read()
                return StreamResult(time.perf_counter() - started, problem=f"HTTP {response.status} {error_kind(raw)}")
            async for chunk in response.chunks():
                reader.feed(decoder.decode(chunk))
    except (HttpError, OSError, EOFError, asyncio.LimitOverrunError, ValueError, TimeoutError) as exc:
        kind = f"client {type(exc).__name__}"
        kind += " after the first frame" if reader.frames else " before any frame"
        return StreamResult(time.perf_counter() - started, reader.first_frame, reader.done, reader.frames, kind)
    result = StreamResult(time.perf_counter() - started, reader.first_frame, reader.done, reader.frames)
    result.problem = problem_in_frames(reader.frames)
    return result


class Target:
    """JWTs (one per scope) and URLs for one running BenchServer."""

    def __init__(self, server: BenchServer, scopes: int) -> None:
        self.server = server
        now = int(time.time())
        self.tokens = [
            jwt.encode(
                {
                    "sub": f"bench-user-{i}",
                    "scope_id": f"bench-scope-{i:02d}",
                    "scopeContext": {"tier": "bench"},
                    "iat": now,
                    "exp": now + 3 * 3600,
                },
                server.jwt_secret,
                algorithm="HS256",
            )
            for i in range(scopes)
        ]

    def client(self) -> Client:
        """A client of the server: one keep-alive connection per request in flight."""
        return Client(self.server.base_url)

    def headers(self, index: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[index % len(self.tokens)]}"}

    async def chat(self, client: Client, message: str, index: int, session_id: str = "") -> StreamResult:
        """A message in scope `index` (modulo the scopes): a new session, or `session_id` continued."""
        body = {"message": message, **({"session_id": session_id} if session_id else {})}
        return await run_stream(client, CHAT_PATH, headers=self.headers(index), body=body)

    async def bare(self, client: Client, message: str, index: int, session_id: str = "") -> StreamResult:
        body = {"message": message, **({"session_id": session_id} if session_id else {})}
        return await run_stream(client, BARE_PATH, headers={}, body=body)
