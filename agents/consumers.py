"""WebSocket /ws/chat: the same events as the SSE stream, one JSON object per WebSocket message.

Auth: a `token` query parameter, or a first message `{"type": "auth", "token": ...}`. Then
`{"type": "message", "message", "session_id"?, "scope_id"?, "context"?}` starts a message and
`{"type": "cancel"}` stops the running one. Errors before a message starts are sent as
`{"type": "error", "code", "message", "timestamp"}`; a frame that is not a JSON object (binary, bad JSON,
nested too deep) is such an error too, and the socket stays open. A message the server fails to start (its
database is down: `service_unavailable`; anything unexpected: `internal_error`) gets that `error` and then
`done{reason: "error"}`, as a failure mid-message does, and the socket stays open; a token that cannot be
checked for the same reason gets the `error`, then the socket is closed with 1013 (try again later).

The protocol for integrators: docs/websocket.md.

A JWT caller's socket is closed with 4401 once the token expires; a message already running finishes
first. Sending `{"type": "auth"}` with a fresh token before then keeps the socket open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from agents.runtime.records import UsageTotals
from agents.turn.request import prepare_chat
from agents.turn.run import ChatRun
from core import events
from core.errors import ApiError, exception_to_error
from scoping.authentication import Caller, authenticate_async

logger = logging.getLogger(__name__)

UNAUTHORIZED_CLOSE_CODE = 4401
TRY_AGAIN_LATER_CLOSE_CODE = 1013  # RFC 6455 registry: the server cannot serve now (its database is down)
PATH = "/ws/chat"


MAX_FRAME_DEPTH = 64


class FrameRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def json_depth_ok(value: object, limit: int = MAX_FRAME_DEPTH) -> bool:
    """True when `value` nests no deeper than `limit` (iterative: a hostile frame cannot blow the stack)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return True


def decode_frame(text_data: str | None, bytes_data: bytes | None) -> dict:
    if text_data is None:
        raise FrameRefused("invalid_json", "Frames must be JSON text, not binary.")
    try:
        content = json.loads(text_data)
    except (json.JSONDecodeError, RecursionError):
        raise FrameRefused("invalid_json", "The frame is not valid JSON.")
    if not json_depth_ok(content):
        raise FrameRefused("invalid_json", f"The frame nests deeper than {MAX_FRAME_DEPTH} levels.")
    if not isinstance(content, dict):
        raise FrameRefused(
            "validation_error", "A frame must be a JSON object whose type is 'auth', 'message' or 'cancel'."
        )
    return content


class ChatConsumer(AsyncJsonWebsocketConsumer):
    # No channel of its own: nothing is ever sent to the socket's channel (a cancel from another process
    # reaches the message's run, which listens on its own: agents.turn.cancel). With one, Channels reads
    # it from Redis for the socket's whole life, and a Redis outage closed every socket with 1011; an alias
    # that names no layer makes get_channel_layer() return None.
    channel_layer_alias = "amodal-websocket-without-a-channel"

    caller: Caller | None = None
    run: ChatRun | None = None
    forwarder: asyncio.Task | None = None
    expiry: asyncio.Task | None = None

    async def connect(self) -> None:
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        if "token" in query:
            await self.authenticate(query["token"][0])

    async def authenticate(self, token: object) -> bool:
        header = f"Bearer {token}" if isinstance(token, str) and token else None
        caller = await self.check_credentials(header)
        if caller is None:
            return False
        self.caller = caller
        self.watch_expiry()
        await self.send_json(events.auth_ok())
        return True

    async def check_credentials(self, header: str | None) -> Caller | None:
        """The caller of `header`; None once the socket is told why and closed: 4401 for a refused token,
        1013 when it cannot be checked now (e.g. the database that holds the API keys is down)."""
        try:
            return await authenticate_async(header)
        except ApiError as exc:
            await self.send_error(exc.code, exc.message)
            await self.close(code=UNAUTHORIZED_CLOSE_CODE)
        except Exception as exc:
            error = exception_to_error(exc, path=PATH)
            await self.send_error(error.code, error.message)
            await self.close(code=TRY_AGAIN_LATER_CLOSE_CODE)
        return None

    def watch_expiry(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if self.caller is not None and self.caller.expires_at is not None:
            self.expiry = asyncio.create_task(self.close_at_expiry(self.caller.expires_at))

    def token_expired(self) -> bool:
        return self.caller is not None and self.caller.expires_at is not None and time.time() >= self.caller.expires_at

    async def close_at_expiry(self, expires_at: int) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        if self.forwarder is not None and not self.forwarder.done():
            await asyncio.wait([self.forwarder])  # the running message finishes first
        await self.close_expired()

    async def close_expired(self) -> None:
        await self.send_error("token_expired", "The token has expired; reconnect with a fresh one.")
        await self.close(code=UNAUTHORIZED_CLOSE_CODE)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        try:
            content = decode_frame(text_data, bytes_data)
        except FrameRefused as exc:
            await self.send_error(exc.code, str(exc))
            return
        await self.receive_json(content)

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json(events.error(code, message))

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type")
        if kind == "auth":
            await self.authenticate(content.get("token"))
        elif kind == "message":
            await self.start_message(content)
        elif kind == "cancel":
            if self.run is not None:
                self.run.cancel("user_abort")
        else:
            await self.send_error("validation_error", "type: must be 'auth', 'message' or 'cancel'.")

    async def start_message(self, content: dict) -> None:
        if self.caller is None:
            self.caller = await self.check_credentials(None)
            if self.caller is None:
                return
        if self.token_expired():
            await self.close_expired()
            return
        if self.forwarder is not None and not self.forwarder.done():
            await self.send_error("session_busy", "A message is still running on this connection.")
            return
        body = {key: value for key, value in content.items() if key != "type"}
        try:
            self.run = (await prepare_chat(self.caller, body)).start()
        except ApiError as exc:  # a refusal: bad input, another scope's session, a rate limit...
            await self.send_error(exc.code, exc.message)
            return
        except Exception as exc:  # the server failed (its database is down): the message ends as a failed one
            error = exception_to_error(exc, path=PATH)
            await self.send_error(error.code, error.message)
            await self.send_json(events.done(reason="error", usage=UsageTotals().as_dict(), message_id=None))
            return
        self.forwarder = asyncio.create_task(self.forward(self.run))

    async def forward(self, run: ChatRun) -> None:
        async for item in run.stream.events():
            await self.send_json(item)

    async def disconnect(self, code) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
        if self.run is not None:
            await self.run.abandon()
        if self.forwarder is not None:
            self.forwarder.cancel()
