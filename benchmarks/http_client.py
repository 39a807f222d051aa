"""A small HTTP/1.1 client on asyncio streams, for the benchmark's requests: keep-alive, chunked bodies.

The client shares the machine's cores with daphne, and a general client (httpx) spends several times the
CPU of the server's bare view on every streamed response: with hundreds of streams at once it, not the
server, would set the pace. This one does only what the benchmark needs: POST a JSON body, read the
status, the headers and the body as it arrives, and keep the connection for the next request.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class HttpError(Exception):
    """The connection broke, or the server's answer is not HTTP/1.1 as expected."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    reader: asyncio.StreamReader
    reusable: bool = False  # set once the body was read to its end on a keep-alive connection

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (de-chunked)."""
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            async for data in self._chunked():
                yield data
        elif "content-length" in self.headers:
            yield await self.reader.readexactly(int(self.headers["content-length"]))
        else:
            while data := await self.reader.read(65536):
                yield data
            return
        self.reusable = self.headers.get("connection", "").lower() != "close"

    async def _chunked(self) -> AsyncIterator[bytes]:
        while True:
            size = int((await self.reader.readline()).split(b";")[0].strip() or b"x", 16)
            if size == 0:
                while (await self.reader.readline()) not in (b"\r\n", b""):
                    pass
                return
            data = await self.reader.readexactly(size)
            await self.reader.readexactly(2)
            yield data

    async def read(self) -> bytes:
        return b"".join([data async for data in self.chunks()])


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()

    async def post(self, host: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Response:
        data = json.dumps(body).encode()
        lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
        lines += [f"Content-Length: {len(data)}", *(f"{name}: {value}" for name, value in headers.items())]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"not an HTTP/1.1 answer: {status_line[:80]!r}")
        response_headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                response_headers[name.strip().lower()] = value.strip()
        return Response(int(parts[1]), response_headers, self.reader)


class Client:
    """Connections to one `http://host:port`, kept open between requests (one request at a time each)."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.idle: list[Connection] = []

    @asynccontextmanager
    async def post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> AsyncIterator[Response]:
        """`async with client.post(...) as response`: the connection is reused if the body was read whole."""
        connection = self.idle.pop() if self.idle else Connection(*await asyncio.open_connection(self.host, self.port))
        response = None
        try:
            response = await connection.post(f"{self.host}:{self.port}", path, body, headers)
            yield response
        finally:
            if response is not None and response.reusable:
                self.idle.append(connection)
            else:
                connection.close()

    async def aclose(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
