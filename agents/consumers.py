"""WebSocket /ws/chat: the same events as the SSE stream, one JSON object per WebSocket message.

Auth: a `token` query parameter, or a first message `{"type": "auth", "token": ...}`. Then
`{"type": "message", "message", "session_id"?, "scope_id"?, "context"?}` starts a message and
`{"type": "cancel"}` stops the running one. Errors before a message starts are sent as
`{"type": "error", "code", "message", "timestamp"}`.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from agents.chat import ChatRun, prepare_chat
from agents.runtime.events import event
from amodal_site.db import db_call
from amodal_site.errors import ApiError
from scoping.authentication import Caller, authenticate_authorization

logger = logging.getLogger(__name__)

UNAUTHORIZED_CLOSE_CODE = 4401


class ChatConsumer(AsyncJsonWebsocketConsumer):
    caller: Caller | None = None
    run: ChatRun | None = None
    forwarder: asyncio.Task | None = None

    async def connect(self) -> None:
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode())
        if "token" in query:
            await self.authenticate(query["token"][0])

    async def authenticate(self, token: object) -> bool:
        try:
            header = f"Bearer {token}" if isinstance(token, str) and token else None
            self.caller = await db_call(authenticate_authorization)(header)
        except ApiError as exc:
            await self.send_error(exc.code, exc.message)
            await self.close(code=UNAUTHORIZED_CLOSE_CODE)
            return False
        await self.send_json(event("auth_ok"))
        return True

    async def send_error(self, code: str, message: str) -> None:
        await self.send_json(event("error", code=code, message=message))

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
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
            self.caller = await self.caller_without_token()
            if self.caller is None:
                return
        if self.forwarder is not None and not self.forwarder.done():
            await self.send_error("session_busy", "A message is still running on this connection.")
            return
        body = {key: value for key, value in content.items() if key != "type"}
        try:
            self.run = (await prepare_chat(self.caller, body)).start()
        except ApiError as exc:
            await self.send_error(exc.code, exc.message)
            return
        self.forwarder = asyncio.create_task(self.forward(self.run))

    async def caller_without_token(self) -> Caller | None:
        try:
            return await db_call(authenticate_authorization)(None)
        except ApiError as exc:
            await self.send_error(exc.code, exc.message)
            await self.close(code=UNAUTHORIZED_CLOSE_CODE)
            return None

    async def forward(self, run: ChatRun) -> None:
        async for item in run.events():
            await self.send_json(item)

    async def disconnect(self, code) -> None:
        if self.run is not None:
            await self.run.abandon()
        if self.forwarder is not None:
            self.forwarder.cancel()
