"""`ChatRun`: one message, run in its own task inside its session's scope. `init` leaves first, as soon
as the session is known and leased; then the user message is saved and the agent loop runs; `done` is
always last, whatever failed (a database that went away mid-stream is `error{service_unavailable}` then
`done{reason: error}`). A message its scope's budget refused (agents.budgets) sends `init`, `error` and
`done{reason: budget_exceeded}` and nothing to the model.

The task can be cancelled by the client going away, by a WebSocket `cancel`, or by
`POST /sessions/<id>/cancel` from any process.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from agents import services
from agents.agent_folder import manifest_of
from agents.budgets import BUDGET_EXCEEDED, Admission
from agents.models import Session, SessionStatus
from agents.runtime.loop import AgentLoop, LoopLimits, LoopOutcome
from agents.runtime.prompt import build_system_prompt
from agents.runtime.providers import provider_for
from agents.runtime.records import ModelMessage, UsageTotals
from agents.runtime.transcript import TranscriptPart
from agents.runtime.wire import encode_json, estimate_tokens
from agents.turn.cancel import listen_for_cancel
from agents.turn.lease import SessionLease
from agents.turn.recorder import TurnRecorder
from agents.turn.stream import EventStream
from core import events
from core.agent_folder import AgentFolder
from core.db import db_call
from core.errors import ApiError, exception_to_error
from core.events import scrub_secrets
from core.tools import ToolContext, tools_for_agent
from scoping.authentication import Caller, ResolvedScope
from scoping.context import scope, scoped_db
from scoping.ratelimits import StreamSlots

logger = logging.getLogger(__name__)

DISCONNECT_SAVE_SECONDS = 8.0


@dataclass(frozen=True)
class ModelChoice:
    provider: str
    model: str
    base_url: str | None
    api_key: str | None


@dataclass
class ChatRun:
    agent: AgentFolder
    caller: Caller
    resolved: ResolvedScope
    session: Session
    lease: SessionLease
    text: str
    model: ModelChoice
    slots: StreamSlots = field(default_factory=StreamSlots)  # its stream slots (rate limits), held while it runs
    admission: Admission | None = None  # the budget's decision; None without budgets
    stream: EventStream = field(default_factory=EventStream)
    task: asyncio.Task | None = None
    cancel_reason: str | None = None
    outcome: LoopOutcome | None = None
    # Cancelling is only allowed while the loop runs: a cancel that lands while the run is saving its
    # end (releasing the lease, emitting `done`) must not cut that short.
    cancellable: bool = False
    recorder: TurnRecorder | None = None  # set once the loop is built

    @property
    def message_id(self) -> str | None:
        """The public id of the last assistant message this run saved (what the end user rates), if any."""
        saved = self.recorder.last_public_id if self.recorder is not None else None
        return str(saved) if saved is not None else None

    @property
    def scope_id(self) -> str:
        return self.resolved.scope_id

    def start(self) -> ChatRun:
        self.task = asyncio.create_task(self.run(), name=f"chat-{self.session.pk}")
        return self

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

    async def run(self) -> None:
        """The task's body, in the session's scope: entered here, not inherited from whoever started it."""
        with scope(self.scope_id):
            await self.run_message()

    async def run_message(self) -> None:
        await self.stream.emit(
            events.init(session_id=str(self.session.pk), scope_id=self.scope_id, deploy_id=self.agent.deploy_id)
        )
        if self.admission is not None and not self.admission.admitted:
            await self.refuse(self.admission)
        else:
            await self.answer()
        assert self.outcome is not None, "answer() and refuse() set the outcome"
        await self.slots.release()  # before `done`: a client may send its next message at once
        await self.stream.emit(
            events.done(reason=self.outcome.reason, usage=self.outcome.usage.as_dict(), message_id=self.message_id)
        )

    async def refuse(self, admission: Admission) -> None:
        """Over the budget: record the refused message (which gives the lease back) and say why."""
        self.outcome = outcome_of(None, BUDGET_EXCEEDED)
        error: ApiError = admission.refusal()
        try:
            await db_call(services.record_refusal)(session=self.session, text=self.text, lock_token=self.lease.token)
            self.lease.released = True
        except Exception as exc:
            error = exception_to_error(exc, path=f"session {self.session.pk}")
            self.outcome = outcome_of(None, "error")
            await self.lease.release(SessionStatus.ERROR)
        await self.stream.emit(events.error(error.code, error.message))

    async def answer(self) -> None:
        """Run the agent loop; whatever fails, the lease is released and `outcome` set."""
        emit = self.stream.emit
        helpers = [
            asyncio.create_task(listen_for_cancel(self.session.pk, self.cancel)),
            asyncio.create_task(self.lease.keep()),
        ]
        if self.slots:
            helpers.append(asyncio.create_task(self.slots.keep()))
        status = SessionStatus.IDLE
        loop: AgentLoop | None = None
        self.cancellable = True
        try:
            # Saving the user message and building the loop are inside the try: whatever fails, the
            # lease is released and the stream still ends with `done`.
            loop = await self.build_loop()
            self.outcome = await loop.run()
            if self.outcome.reason == "error":
                status = SessionStatus.ERROR
        except asyncio.CancelledError:
            self.outcome = outcome_of(loop, "user_abort")
            status = SessionStatus.INTERRUPTED
        except Exception as exc:
            error = exception_to_error(exc, path=f"session {self.session.pk}")  # logs what is unexpected
            await emit(events.error(error.code, error.message))
            self.outcome = outcome_of(loop, "error")
            status = SessionStatus.ERROR
        finally:
            self.cancellable = False
            for helper in helpers:
                helper.cancel()
            await self.lease.release(status)

    async def build_loop(self) -> AgentLoop:
        tools = tools_for_agent(self.agent)
        user_part = TranscriptPart.of([user_message(scrub_secrets(self.text))], starts_exchange=True)
        started = await db_call(services.start_message)(session=self.session, text=self.text, user_part=user_part)
        system = build_system_prompt(self.agent, tools, started.prompt_sections)
        limits = manifest_of(self.agent).limits
        tool_specs = [tool.as_model_spec() for tool in tools.values()]
        fixed_tokens = estimate_tokens(system) + estimate_tokens(encode_json(tool_specs)) + estimate_tokens(self.text)
        history = started.transcript.window(max(0, limits.max_context_tokens - fixed_tokens))
        self.recorder = TurnRecorder(
            session=self.session,
            lease=self.lease,
            provider=self.model.provider,
            next_seq=started.next_seq,
            transcript_length=started.transcript_length,
            context_dropped=history.dropped_exchanges,
        )
        if history.dropped_exchanges:
            logger.info(
                "session %s: %d earlier exchanges left out of the context", self.session.pk, history.dropped_exchanges
            )
        return AgentLoop(
            provider=provider_for(
                self.model.provider, model=self.model.model, base_url=self.model.base_url, api_key=self.model.api_key
            ),
            model=self.model.model,
            system=system,
            history_json=history.json,
            messages=[user_message(self.text)],
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
                session_tokens_before=started.session_tokens_before,
            ),
            emit=self.stream.emit,
            recorder=self.recorder,
        )


def user_message(text: str) -> ModelMessage:
    return {"role": "user", "content": text}


def outcome_of(loop: AgentLoop | None, reason: events.DoneReason) -> LoopOutcome:
    return loop.outcome(reason) if loop is not None else LoopOutcome(reason, UsageTotals(), "", [])
