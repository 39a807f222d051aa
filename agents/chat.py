"""One message of a chat, from request to `done`: the piece the SSE view, the sync view and the
WebSocket consumer share.

`prepare_chat` does everything that can fail with a JSON error before a stream starts (validation,
scope, session lookup, the session lease, saving the user's message). `ChatRun.start` then runs the
agent loop in its own task, inside the session's scope, and its events come out of `ChatRun.events()`.
The task can be cancelled by the client going away, by a WebSocket `cancel`, or by
`POST /sessions/<id>/cancel` from any process (a channel-layer group per session).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from channels.layers import get_channel_layer
from rest_framework import serializers

from agents import services
from agents.agent_folder import manifest_of
from agents.models import Session, SessionStatus
from agents.pricing import cost_micros, price_for_model
from agents.runtime.loop import AgentLoop, LoopLimits, LoopOutcome, Turn
from agents.runtime.prompt import build_system_prompt
from agents.runtime.providers import provider_for
from agents.runtime.providers.base import TokenUsage
from agents.runtime.records import UsageTotals
from core.agent_folder import AgentFolder, current_agent
from core.db import db_call
from core.errors import ApiError, validation_error
from core.events import event
from core.tools import ToolContext, prompt_sections, tools_for_agent
from scoping.authentication import Caller, ResolvedScope, resolve_scope
from scoping.context import scope, scoped_db

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 100_000
SESSION_BUSY_WAIT_SECONDS = 5.0
LOCK_POLL_SECONDS = 0.1
LEASE_RENEW_SECONDS = 20.0
DISCONNECT_SAVE_SECONDS = 8.0
CANCEL_MESSAGE_TYPE = "chat.cancel"


class ModelOverrideSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=["anthropic", "local"])
    model = serializers.CharField(max_length=100)


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers (DRF's turns 5 into "5"): the contract says a string."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ChatRequestSerializer(serializers.Serializer):
    message = StrictCharField(max_length=MAX_MESSAGE_CHARS, trim_whitespace=False)
    session_id = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=64)
    scope_id = serializers.JSONField(required=False, allow_null=True)
    # The stubs see Field.context here; DRF's metaclass pops declared fields, so nothing is shadowed.
    context = serializers.JSONField(required=False, allow_null=True)  # type: ignore[assignment]
    model = ModelOverrideSerializer(required=False, allow_null=True)


def cancel_group(session_id: object) -> str:
    return f"chat-cancel.{session_id}"


@dataclass
class ModelChoice:
    provider: str
    model: str
    base_url: str | None
    api_key: str | None


def choose_model(agent: AgentFolder, caller: Caller, override: dict | None) -> ModelChoice:
    main = manifest_of(agent).main_model
    if not override:
        return ModelChoice(main.provider, main.model, main.base_url, main.api_key)
    if not caller.is_trusted_server:
        raise ApiError(403, "model_override_forbidden", "Only API-key callers may choose the model.")
    same_provider = override["provider"] == main.provider
    return ModelChoice(
        override["provider"],
        override["model"],
        main.base_url if same_provider else None,
        main.api_key if same_provider else None,
    )


@dataclass
class ChatRun:
    agent: AgentFolder
    caller: Caller
    resolved: ResolvedScope
    session: Session
    lock_token: str
    text: str
    model: ModelChoice
    started: services.StartedMessage
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    task: asyncio.Task | None = None
    cancel_reason: str | None = None
    outcome: LoopOutcome | None = None
    # Cancelling is only allowed while the loop runs: a cancel that lands while the run is saving its
    # end (releasing the lease, emitting `done`) must not cut that short.
    cancellable: bool = False

    @property
    def scope_id(self) -> str:
        return self.resolved.scope_id

    # --- running -------------------------------------------------------------------------------

    def start(self) -> ChatRun:
        self.task = asyncio.create_task(self.run(), name=f"chat-{self.session.pk}")
        return self

    async def emit(self, item: dict[str, Any]) -> None:
        await self.queue.put(item)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            item = await self.queue.get()
            yield item
            if item["type"] == "done":
                return

    def cancel(self, reason: str = "user_abort") -> None:
        if self.cancellable and self.task is not None and not self.task.done() and self.cancel_reason is None:
            self.cancel_reason = reason
            self.task.cancel()

    async def abandon(self) -> None:
        """The client went away: stop the work and give it a moment to save what exists."""
        self.cancel("disconnect")
        if self.task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self.task), DISCONNECT_SAVE_SECONDS)
            except (TimeoutError, asyncio.CancelledError):
                logger.warning("session %s: saving the interrupted turn took too long", self.session.pk)

    async def build_loop(self) -> AgentLoop:
        tools = tools_for_agent(self.agent)
        sections = await db_call(prompt_sections)(self.agent)
        limits = manifest_of(self.agent).limits
        return AgentLoop(
            provider=provider_for(
                self.model.provider, model=self.model.model, base_url=self.model.base_url, api_key=self.model.api_key
            ),
            model=self.model.model,
            system=build_system_prompt(self.agent, tools, sections),
            messages=[*self.started.history, {"role": "user", "content": self.text}],
            tools=tools,
            tool_context=ToolContext(
                agent=self.agent,
                scope_id=self.scope_id,
                scope_context=self.resolved.context,
                session_id=str(self.session.pk),
                db=scoped_db(self.scope_id),
                shared_write=self.caller.shared_write,
            ),
            limits=LoopLimits(
                max_turns=limits.max_turns,
                tool_timeout_seconds=limits.tool_timeout_seconds,
                max_session_tokens=limits.max_session_tokens,
                session_tokens_before=self.started.session_tokens_before,
            ),
            emit=self.emit,
            recorder=self,
        )

    def outcome_of(self, loop: AgentLoop | None, reason: str) -> LoopOutcome:
        return loop.outcome(reason) if loop is not None else LoopOutcome(reason, UsageTotals(), "", [])

    async def run(self) -> None:
        """The task's body, in the session's scope: entered here, not inherited from whoever started it."""
        with scope(self.scope_id):
            await self.run_message()

    async def run_message(self) -> None:
        await self.emit(
            event("init", session_id=str(self.session.pk), scope_id=self.scope_id, deploy_id=self.agent.deploy_id)
        )
        helpers = [asyncio.create_task(self.listen_for_cancel()), asyncio.create_task(self.keep_lease())]
        status = SessionStatus.IDLE
        loop: AgentLoop | None = None
        self.cancellable = True
        try:
            # Building the loop (tools, prompt sections, provider) is inside the try: whatever fails,
            # the lease is released and the stream still ends with `done`.
            loop = await self.build_loop()
            self.outcome = await loop.run()
            if self.outcome.reason == "error":
                status = SessionStatus.ERROR
        except asyncio.CancelledError:
            self.outcome = self.outcome_of(loop, "user_abort")
            status = SessionStatus.INTERRUPTED
        except Exception:
            logger.exception("session %s: the agent loop failed", self.session.pk)
            await self.emit(
                event(
                    "error",
                    code="internal_error",
                    message="Something went wrong on the server; the message was stopped.",
                )
            )
            self.outcome = self.outcome_of(loop, "error")
            status = SessionStatus.ERROR
        finally:
            self.cancellable = False
            for helper in helpers:
                helper.cancel()
            await db_call(services.release_lock)(session_id=self.session.pk, lock_token=self.lock_token, status=status)
        await self.emit(event("done", reason=self.outcome.reason, usage=self.outcome.usage.as_dict()))

    async def listen_for_cancel(self) -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        group = cancel_group(self.session.pk)
        await layer.group_add(group, channel)
        try:
            while True:
                message = await layer.receive(channel)
                if message.get("type") == CANCEL_MESSAGE_TYPE:
                    self.cancel("user_abort")
                    return
        finally:
            await layer.group_discard(group, channel)

    async def keep_lease(self) -> None:
        while True:
            await asyncio.sleep(LEASE_RENEW_SECONDS)
            await db_call(services.renew_lock)(session_id=self.session.pk, lock_token=self.lock_token)

    # --- Recorder --------------------------------------------------------------------------------

    async def cost_of(self, model: str, usage: TokenUsage) -> int | None:
        price = await db_call(price_for_model)(model)
        return cost_micros(
            price,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        )

    async def record_turn(self, turn: Turn, cost_micros: int | None) -> None:
        seq = self.started.next_seq
        self.started = services.StartedMessage(self.started.history, seq + 1, self.started.session_tokens_before)
        await db_call(services.record_turn)(
            session=self.session, seq=seq, turn=turn, cost_micros=cost_micros, provider=self.model.provider
        )


def parse_chat_request(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "validation_error", "The request body must be a JSON object.")
    serializer = ChatRequestSerializer(data=body)
    if not serializer.is_valid():
        raise validation_error(serializer.errors)
    return serializer.validated_data


async def prepare_chat(caller: Caller, body: object) -> ChatRun:
    """Validate, resolve the scope, find or create the session and take its lease; raise ApiError."""
    data = parse_chat_request(body)
    agent = current_agent()
    manifest = manifest_of(agent)
    resolved = resolve_scope(caller, data.get("scope_id"), data.get("context"))
    model = choose_model(agent, caller, data.get("model"))
    lock_token = services.new_lock_token()
    with scope(resolved.scope_id):
        await db_call(services.note_scope_activity)(scope_id=resolved.scope_id)
        await db_call(services.ensure_deployment)(
            deploy_id=agent.deploy_id, agent_name=manifest.name, agent_version=manifest.version
        )
        if data.get("session_id"):
            session = await db_call(services.get_session)(data["session_id"])
            await wait_for_lease(session, lock_token)
        else:
            session = await db_call(services.create_locked_session)(
                deploy_id=agent.deploy_id,
                provider=model.provider,
                model=model.model,
                first_message=data["message"],
                user_sub=caller.sub,
                lock_token=lock_token,
            )
        try:
            started = await db_call(services.start_message)(session=session, text=data["message"])
        except BaseException:
            await db_call(services.release_lock)(
                session_id=session.pk, lock_token=lock_token, status=SessionStatus.IDLE
            )
            raise
    return ChatRun(
        agent=agent,
        caller=caller,
        resolved=resolved,
        session=session,
        lock_token=lock_token,
        text=data["message"],
        model=model,
        started=started,
    )


async def wait_for_lease(session: Session, lock_token: str) -> None:
    """A second message waits up to 5 s for the first (so a resend right after Stop works), then 409."""
    deadline = asyncio.get_running_loop().time() + SESSION_BUSY_WAIT_SECONDS
    while not await db_call(services.try_lock_session)(session_id=session.pk, lock_token=lock_token):
        if asyncio.get_running_loop().time() >= deadline:
            raise ApiError(409, "session_busy", "This session is answering another message; try again shortly.")
        await asyncio.sleep(LOCK_POLL_SECONDS)


async def send_cancel(session_id: object) -> None:
    await get_channel_layer().group_send(cancel_group(session_id), {"type": CANCEL_MESSAGE_TYPE})
