"""A fast, local fake of the Anthropic Messages API for the benchmarks: asyncio, HTTP/1.1 with keep-alive.

Run on its own (`python -m benchmarks.fake_messages_api --port 0` prints `listening on URL`) or through
`FakeMessagesApi`, which starts it in a child process, so its CPU is neither daphne's nor the client's and
it holds hundreds of streams at once. `POST .../messages` (any prefix, so `/v1/messages` and
`/v1/v1/messages` both answer) reads the whole JSON body, as the real API does, and answers by the LAST
user message of the request:

- `/tool NAME {json}`: one `tool_use` block (NAME with that JSON as input), stop reason `tool_use`;
- a `tool_result` block (the turn after a tool call): a short text, `NAME returned N characters`;
- `/slow MS w1 w2 ...`: the words, one text delta every MS milliseconds;
- `/say TEXT`: TEXT in 3 text deltas (what the `local` provider answers);
- anything else: a short fixed text in 3 deltas.

With `"stream": true` it answers in the real SSE wire format (message_start with the input usage,
content_block_start, content_block_delta `text_delta` or `input_json_delta`, content_block_stop,
message_delta with the stop reason and output usage, message_stop); otherwise one JSON message. Input
tokens are the body's bytes / 4 (also the answer of `POST .../messages/count_tokens`). `GET /stats` answers
the requests served so far, by kind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_TEXT = "This is the fake Messages API answering."
READY_PREFIX = "listening on "
STARTUP_TIMEOUT_SECONDS = 20.0
MAX_HEADER_BYTES = 64 * 1024


# --- what to answer ------------------------------------------------------------------------------------


@dataclass
class Answer:
    """One model call's answer: text pieces (with a pause before each) or one tool_use block."""

    pieces: list[str] = field(default_factory=list)
    delay_seconds: float = 0.0
    tool_name: str = ""
    tool_input: dict[str, Any] = field(default_factory=dict)
    kind: str = "text"

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool_name else "end_turn"

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def split_words(text: str, pieces: int) -> list[str]:
    """Split text at word boundaries into at most `pieces` deltas (the `local` provider's split)."""
    words = re.findall(r"\S+\s*|\s+", text)
    if len(words) <= 1:
        return [text] if text else []
    size = -(-len(words) // pieces)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        block.get("text", "") for block in content if isinstance(block, dict) and block.get("type") == "text"
    )


def tool_names_by_id(messages: list[dict[str, Any]]) -> dict[str, str]:
    names = {}
    for message in messages:
        if message.get("role") == "assistant" and isinstance(message.get("content"), list):
            for block in message["content"]:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    names[block.get("id", "")] = block.get("name", "")
    return names


def answer_tool_results(messages: list[dict[str, Any]], results: list[dict[str, Any]]) -> Answer:
    names = tool_names_by_id(messages)
    lines = []
    for result in results:
        content = result.get("content", "")
        size = len(content if isinstance(content, str) else json.dumps(content))
        lines.append(f"{names.get(result.get('tool_use_id', ''), 'the tool')} returned {size} characters")
    return Answer(split_words(" ".join(lines), 3), kind="tool_result")


def answer_command(text: str) -> Answer:
    if text.startswith("/tool "):
        _, name, *rest = text.split(" ", 2)
        try:
            arguments = json.loads(rest[0]) if rest else {}
        except json.JSONDecodeError:
            arguments = {"_invalid_json": rest[0]}
        return Answer(tool_name=name, tool_input=arguments if isinstance(arguments, dict) else {}, kind="tool")
    if text.startswith("/slow "):
        _, ms, *rest = text.split(" ", 2)
        words = rest[0] if rest else ""
        return Answer(split_words(words, 10_000), delay_seconds=int(ms) / 1000 if ms.isdigit() else 0.0, kind="slow")
    if text.startswith("/say "):
        return Answer(split_words(text.removeprefix("/say "), 3), kind="say")
    return Answer(split_words(DEFAULT_TEXT, 3), kind="other")


def plan_answer(body: dict[str, Any]) -> Answer:
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content", "") if last.get("role") == "user" else ""
    if isinstance(content, list):
        results = [block for block in content if isinstance(block, dict) and block.get("type") == "tool_result"]
        if results:
            return answer_tool_results(messages, results)
    return answer_command(text_of(content).strip())


# --- the wire format -----------------------------------------------------------------------------------


def usage_of(body_bytes: int, answer: Answer) -> tuple[int, int]:
    output = len(answer.text) + len(json.dumps(answer.tool_input)) if answer.tool_name else len(answer.text)
    return max(1, body_bytes // 4), max(1, output // 4)


def sse(type_: str, **fields: Any) -> bytes:
    data = json.dumps({"type": type_, **fields}, separators=(",", ":"))
    return f"event: {type_}\ndata: {data}\n\n".encode()


def message_shell(model: str, input_tokens: int) -> dict[str, Any]:
    return {
        "id": f"msg_fake{uuid.uuid4().hex[:20]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def tool_events(answer: Answer) -> list[bytes]:
    block = {"type": "tool_use", "id": f"toolu_fake{uuid.uuid4().hex[:20]}", "name": answer.tool_name, "input": {}}
    arguments = json.dumps(answer.tool_input)
    half = len(arguments) // 2
    return [
        sse("content_block_start", index=0, content_block=block),
        *(
            sse("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": part})
            for part in ("", arguments[:half], arguments[half:])
        ),
        sse("content_block_stop", index=0),
    ]


def full_message(model: str, answer: Answer, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    message = message_shell(model, input_tokens)
    if answer.tool_name:
        block = {"type": "tool_use", "id": f"toolu_fake{uuid.uuid4().hex[:20]}", "name": answer.tool_name}
        message["content"] = [{**block, "input": answer.tool_input}]
    else:
        message["content"] = [{"type": "text", "text": answer.text}]
    message["stop_reason"] = answer.stop_reason
    message["usage"]["output_tokens"] = output_tokens
    return message


# --- HTTP/1.1 --------------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readline()


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await read_chunked(reader)
    else:
        body = await reader.readexactly(int(headers.get("content-length") or 0))
    return Request(method, path, headers, body)


def response_head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class FakeServer:
    """The asyncio server and its counters."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.open_streams = 0
        self.peak_streams = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await read_request(reader)) is not None:
                await self.respond(request, writer)
                if not request.keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def respond(self, request: Request, writer: asyncio.StreamWriter) -> None:
        path = request.path.split("?")[0]
        if request.method == "POST" and path.endswith("/messages"):
            await self.messages(request, writer)
        elif request.method == "POST" and path.endswith("/messages/count_tokens"):
            self.counts["count_tokens"] += 1
            await self.send_json(writer, "200 OK", {"input_tokens": max(1, len(request.body) // 4)})
        elif request.method == "GET" and request.path == "/stats":
            stats = {**self.counts, "peak_streams": self.peak_streams}
            await self.send_json(writer, "200 OK", stats)
        else:
            error = {"type": "error", "error": {"type": "not_found_error", "message": f"no route {request.path}"}}
            await self.send_json(writer, "404 Not Found", error)

    async def send_json(self, writer: asyncio.StreamWriter, status: str, value: Any) -> None:
        data = json.dumps(value).encode()
        headers = {"content-type": "application/json", "content-length": str(len(data)), "request-id": "req_fake"}
        writer.write(response_head(status, headers) + data)
        await writer.drain()

    async def messages(self, request: Request, writer: asyncio.StreamWriter) -> None:
        try:
            body = json.loads(request.body)
        except json.JSONDecodeError:
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": "body is not JSON"}}
            await self.send_json(writer, "400 Bad Request", error)
            return
        answer = plan_answer(body)
        self.counts[answer.kind] += 1
        model = str(body.get("model") or "claude-fake")
        input_tokens, output_tokens = usage_of(len(request.body), answer)
        if not body.get("stream"):
            await self.send_json(writer, "200 OK", full_message(model, answer, input_tokens, output_tokens))
            return
        self.open_streams += 1
        self.peak_streams = max(self.peak_streams, self.open_streams)
        try:
            await self.stream(writer, model, answer, (input_tokens, output_tokens))
        finally:
            self.open_streams -= 1

    async def stream(self, writer: asyncio.StreamWriter, model: str, answer: Answer, tokens: tuple[int, int]) -> None:
        headers = {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "request-id": f"req_fake{uuid.uuid4().hex[:16]}",
            "transfer-encoding": "chunked",
        }
        writer.write(response_head("200 OK", headers))
        writer.write(chunk(sse("message_start", message=message_shell(model, tokens[0]))))
        if answer.tool_name:
            writer.write(b"".join(chunk(event) for event in tool_events(answer)))
        else:
            await self.stream_text(writer, answer)
        delta = {"stop_reason": answer.stop_reason, "stop_sequence": None}
        writer.write(chunk(sse("message_delta", delta=delta, usage={"output_tokens": tokens[1]})))
        writer.write(chunk(sse("message_stop")) + b"0\r\n\r\n")
        await writer.drain()

    @staticmethod
    async def stream_text(writer: asyncio.StreamWriter, answer: Answer) -> None:
        writer.write(chunk(sse("content_block_start", index=0, content_block={"type": "text", "text": ""})))
        for piece in answer.pieces:
            if answer.delay_seconds:
                await writer.drain()
                await asyncio.sleep(answer.delay_seconds)
            writer.write(chunk(sse("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})))
        writer.write(chunk(sse("content_block_stop", index=0)))


async def serve(port: int) -> None:
    fake = FakeServer()
    server = await asyncio.start_server(fake.handle, HOST, port, backlog=4096, limit=MAX_HEADER_BYTES)
    bound = server.sockets[0].getsockname()[1]
    print(f"{READY_PREFIX}http://{HOST}:{bound}", flush=True)
    async with server:
        await server.serve_forever()


# --- in a child process ----------------------------------------------------------------------------------


class FakeMessagesApi:
    """The fake in a child process: `with FakeMessagesApi() as fake: fake.base_url`."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.base_url = ""

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> FakeMessagesApi:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.fake_messages_api", "--port", "0"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith(READY_PREFIX):
            self.__exit__()
            raise RuntimeError(f"the fake Messages API did not start (said {line!r})")
        self.base_url = line.removeprefix(READY_PREFIX)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fake_messages_api", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one, printed)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
