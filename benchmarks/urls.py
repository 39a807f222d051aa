"""The project's URLs plus `/bench/bare-sse`: the same kind of stream with no auth, no database, no agent.

The bare view is the baseline the chat figures are divided by. It goes through the same ASGI handler and
middleware as `/chat/stream` and answers the same `local`-provider commands the benchmark sends, with
frames of the same shape: `/say TEXT` gives init, 3 text_delta, usage, done; `/slow MS TEXT` gives one
text_delta per word every MS milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from django.http import HttpRequest, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from amodal_site.urls import urlpatterns as project_urlpatterns


def frame(type_: str, **fields: object) -> str:
    stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    item = {"type": type_, **fields, "timestamp": stamp}
    return f"data: {json.dumps(item, separators=(',', ':'), ensure_ascii=False)}\n\n"


def pieces_of(text: str, pieces: int) -> list[str]:
    words = re.findall(r"\S+\s*|\s+", text)
    size = max(1, -(-len(words) // pieces))
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


async def bare_frames(message: str) -> AsyncIterator[str]:
    delay = 0.0
    text = message.removeprefix("/say ")
    if message.startswith("/slow "):
        _, ms, text = message.split(" ", 2)
        delay = int(ms) / 1000
    yield frame("init", session_id=str(uuid.uuid4()), scope_id="bench", deploy_id="bare")
    for piece in pieces_of(text, 10_000 if delay else 3):
        if delay:
            await asyncio.sleep(delay)
        yield frame("text_delta", content=piece)
    tokens = {"input_tokens": 100, "output_tokens": 10, "cache_read_tokens": 0, "cache_write_tokens": 0}
    yield frame("usage", model="local", **tokens, cost_micros=None)
    yield frame("done", reason="model_stop", usage={**tokens, "total_tokens": 110, "cost_micros": None})


@csrf_exempt
@require_POST
async def bare_sse(request: HttpRequest) -> StreamingHttpResponse:
    body = json.loads(request.body or b"{}")
    response = StreamingHttpResponse(bare_frames(str(body.get("message", ""))), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


urlpatterns = [path("bench/bare-sse", bare_sse, name="bench-bare-sse"), *project_urlpatterns]
