"""The project's URLs plus `/bench/bare-sse`: the same kind of stream with no auth, no database, no agent.

The bare view is the baseline the chat figures are divided by. It goes through the same ASGI handler and
middleware as `/chat/stream` and answers the same commands the benchmark sends, with frames of the same
shape as the chat's: `/say TEXT` gives init, 3 text_delta, usage, done; `/tool NAME {json}` gives init,
tool_call_start, tool_call_result (the result of the `memory` tool's `list` on an empty scope), usage, the
summary in text_delta frames, usage, done; `/slow MS TEXT` gives one text_delta per word every MS
milliseconds. A `session_id` in the body is announced in `init` (else a new id), as the chat does.
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


TOOL_RESULT = '{"entries": [], "count": 0, "total_chars": 0, "max_entries": 50, "max_total_chars": 8000}'
TOKENS = {"input_tokens": 100, "output_tokens": 10, "cache_read_tokens": 0, "cache_write_tokens": 0}


def tool_frames(message: str) -> list[str]:
    _, name, *rest = message.split(" ", 2)
    try:
        parameters = json.loads(rest[0]) if rest else {}
    except ValueError:
        parameters = {}
    return [
        frame("tool_call_start", tool_id="toolu_bare_0001", tool_name=name, parameters=parameters),
        frame("tool_call_result", tool_id="toolu_bare_0001", status="success", duration_ms=1, result=TOOL_RESULT),
        frame("usage", model="local", **TOKENS, cost_micros=None),
    ]


async def bare_frames(message: str, session_id: str) -> AsyncIterator[str]:
    delay = 0.0
    text = message.removeprefix("/say ")
    yield frame("init", session_id=session_id or str(uuid.uuid4()), scope_id="bench", deploy_id="bare")
    usage_frames = 1
    if message.startswith("/slow "):
        _, ms, text = message.split(" ", 2)
        delay = int(ms) / 1000
    elif message.startswith("/tool "):
        for item in tool_frames(message):
            yield item
        text = f"{message.split(' ')[1]} returned: no entries"
        usage_frames = 2
    for piece in pieces_of(text, 10_000 if delay else 3):
        if delay:
            await asyncio.sleep(delay)
        yield frame("text_delta", content=piece)
    yield frame("usage", model="local", **TOKENS, cost_micros=None)
    totals = {key: value * usage_frames for key, value in TOKENS.items()}
    yield frame(
        "done", reason="model_stop", usage={**totals, "total_tokens": sum(totals.values()), "cost_micros": None}
    )


@csrf_exempt
@require_POST
async def bare_sse(request: HttpRequest) -> StreamingHttpResponse:
    body = json.loads(request.body or b"{}")
    frames = bare_frames(str(body.get("message", "")), str(body.get("session_id") or ""))
    response = StreamingHttpResponse(frames, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


urlpatterns = [path("bench/bare-sse", bare_sse, name="bench-bare-sse"), *project_urlpatterns]
