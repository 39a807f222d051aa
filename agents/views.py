"""The chat endpoints: plain async Django views, so each SSE frame reaches the client when yielded.

DRF views are sync and would buffer the stream; DRF still validates the body (ChatRequestSerializer).
The scope is entered inside the run task, never in middleware: a streaming response is iterated after
the middleware has returned.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from functools import wraps

from channels.exceptions import ChannelFull
from django.conf import settings
from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from redis.exceptions import RedisError

from agents import services
from agents.turn.cancel import send_cancel
from agents.turn.request import prepare_chat
from agents.turn.run import ChatRun
from core.db import db_call
from core.errors import ServiceUnavailable, exception_to_error
from core.events import ChatEvent, cap
from core.validation import load_json
from scoping.authentication import Caller, authenticate_async, resolve_scope
from scoping.context import scope
from scoping.ratelimits import acheck_request

logger = logging.getLogger(__name__)

KEEP_ALIVE_FRAME = ": keep-alive\n\n"
CHANNEL_LAYER_TIMEOUT_SECONDS = 5.0
# What a channel layer raises when its backend (Redis) is unreachable or full; TimeoutError and
# ConnectionError are OSErrors.
CHANNEL_LAYER_ERRORS: tuple[type[Exception], ...] = (OSError, ChannelFull, RedisError)


def sse_frame(item: ChatEvent) -> str:
    return f"data: {json.dumps(item, separators=(',', ':'), ensure_ascii=False)}\n\n"


def read_json_body(request: HttpRequest) -> object:
    """The body as JSON (none is null); 400 invalid_json when it is not JSON or nests too deeply."""
    return load_json(request.body or b"null")


async def authenticate(request: HttpRequest) -> Caller:
    return await authenticate_async(request.headers.get("Authorization"))


async def start_chat(request: HttpRequest, *, refuse_over_budget: bool = False) -> ChatRun:
    caller = await authenticate(request)
    body = read_json_body(request)
    return (await prepare_chat(caller, body, refuse_over_budget=refuse_over_budget)).start()


async def stream_frames(run: ChatRun) -> AsyncIterator[str]:
    try:
        while True:
            item = await run.stream.next_event(settings.AMODAL_SSE_KEEPALIVE_SECONDS)
            if item is None:
                yield KEEP_ALIVE_FRAME
                continue
            yield sse_frame(item)
            if item["type"] == "done":
                return
    except asyncio.CancelledError:
        # The client went away (Django cancels the response). Stop the work, save what exists.
        await run.abandon()
        raise


def json_errors(view):
    """Answer an exception raised before a response starts in the project's JSON error shape (an
    unavailable database is 503 service_unavailable, anything unexpected a logged 500)."""

    @wraps(view)
    async def wrapper(request: HttpRequest, *args, **kwargs):
        try:
            return await view(request, *args, **kwargs)
        except Exception as exc:
            return exception_to_error(exc, path=request.path).as_response()

    return wrapper


@csrf_exempt
@require_POST
@json_errors
async def chat_stream(request: HttpRequest):
    run = await start_chat(request)
    response = StreamingHttpResponse(stream_frames(run), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


@csrf_exempt
@require_POST
@json_errors
async def chat_sync(request: HttpRequest):
    # No stream to say it in: a message over its scope's budget is 429 budget_exceeded before anything runs.
    run = await start_chat(request, refuse_over_budget=True)
    errors = []
    try:
        async for item in run.stream.events():
            if item["type"] == "error":
                errors.append({"code": item["code"], "message": item["message"]})
    except asyncio.CancelledError:
        await run.abandon()
        raise
    if any(error["code"] == ServiceUnavailable.default_code for error in errors):
        # Nothing has been answered yet, so the caller gets the error itself: what was produced is saved.
        return ServiceUnavailable().as_response()
    outcome = run.outcome
    assert outcome is not None, "ChatRun sets its outcome before it emits `done`"
    body = {
        "session_id": str(run.session.pk),
        "response": cap(outcome.text),
        "tool_calls": [call.saved() for call in outcome.tool_calls],
        "usage": outcome.usage.as_dict(),
        "stop_reason": outcome.reason,
        "message_id": run.message_id,
    }
    if errors:
        body["errors"] = errors
    return JsonResponse(body)


@csrf_exempt
@require_POST
@json_errors
async def cancel_session(request: HttpRequest, session_id: str):
    """Stop a running message of this scope's session, whichever process runs it."""
    caller = await authenticate(request)
    body = read_json_body(request) if request.body else None
    body = body if isinstance(body, dict) else {}
    resolved = resolve_scope(caller, body.get("scope_id"), body.get("context"))
    await acheck_request(caller, resolved.scope_id)
    with scope(resolved.scope_id):
        session = await db_call(services.get_session)(session_id)
    try:
        await asyncio.wait_for(send_cancel(session.pk), CHANNEL_LAYER_TIMEOUT_SECONDS)
    except CHANNEL_LAYER_ERRORS as exc:
        logger.warning("channel layer unavailable for %s: %r", request.path, exc)
        raise ServiceUnavailable(
            "The server cannot reach its channel layer to stop the message; please try again shortly."
        ) from None
    return JsonResponse({"ok": True, "running": bool(session.lock_token)})
