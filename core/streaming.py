"""Streamed downloads built by sync code (a CSV of sessions, a scope's export), under WSGI and ASGI alike.

Under ASGI, Django serves a sync iterator by first reading it whole into a list (with a warning), which is
exactly what a 200,000-row download must not do. So under ASGI each chunk is made by the sync generator in
the request's own worker thread (`sync_to_async`, thread-sensitive: the thread, and so the database
connection and its cursor, of the view), and under WSGI (and Django's test client) the sync generator is
the content itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse


async def chunks_in_worker_thread(chunks: Iterator[str]) -> AsyncIterator[str]:
    """`chunks` for an ASGI response: each one made in the request's sync thread; closed (its database
    cursor too) when the response ends, also when the client goes away."""
    step = sync_to_async(_next_chunk, thread_sensitive=True)
    try:
        while (chunk := await step(chunks)) is not None:
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=True)()


def _next_chunk(chunks: Iterator[str]) -> str | None:
    return next(chunks, None)


def streamed_response(request: HttpRequest, chunks: Iterator[str], *, content_type: str) -> StreamingHttpResponse:
    """A response streaming `chunks`: their sync generator under WSGI, an async one under ASGI."""
    content: Iterator[str] | AsyncIterator[str] = chunks
    if isinstance(request, ASGIRequest):
        content = chunks_in_worker_thread(chunks)
    return StreamingHttpResponse(content, content_type=content_type)
