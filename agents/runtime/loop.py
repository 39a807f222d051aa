"""The agent loop: call the model, stream its text, run the tools it asks for, feed the results back,
until it stops, the turn limit or the session's token budget is reached.

It knows nothing of HTTP or the database: events go to `emit`, and what happens goes to a `Recorder` as
it happens (text checkpoints while a call streams, each call when it ends, each tool call when it ends).
On cancellation it records what exists (partial text, finished tool calls, cut-off ones as errors) and
re-raises.

The history of earlier messages arrives already serialised (`history_json`, see runtime.transcript) and
is passed through untouched; only this message's own messages are Python objects.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from agents.runtime.providers.base import (
    ModelRequest,
    Provider,
    ProviderError,
    TextDelta,
    TokenUsage,
    ToolUse,
    TurnEnd,
    UsageSoFar,
)
from agents.runtime.records import ModelMessage, ToolCallRecord, UsageTotals, text_block, tool_use_block
from agents.runtime.wire import estimate_tokens
from core import events
from core.tools import Tool, ToolContext, ToolResult

logger = logging.getLogger(__name__)

Emit = Callable[[events.ChatEvent], Awaitable[None]]


@dataclass
class Turn:
    """One model call and the tool calls it made."""

    model: str
    text: str = ""
    tool_uses: list[ToolUse] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    usage: TokenUsage | None = None
    latency_ms: int = 0
    interrupted: bool = False
    error_code: str = ""


class Recorder(Protocol):
    def begin_call(self) -> None: ...

    def checkpoint_due(self) -> bool: ...

    async def checkpoint(self, turn: Turn) -> None: ...

    async def call_ended(self, turn: Turn, *, finished: bool) -> int | None:
        """Save the call (its usage, and its transcript part when `finished`); returns its cost."""
        ...

    async def tool_finished(self, turn: Turn, *, last: bool) -> None: ...


@dataclass(frozen=True)
class LoopLimits:
    max_turns: int
    tool_timeout_seconds: float
    max_session_tokens: int | None
    session_tokens_before: int = 0


@dataclass
class LoopOutcome:
    reason: events.DoneReason
    usage: UsageTotals
    text: str
    tool_calls: list[ToolCallRecord]


class AgentLoop:
    def __init__(
        self,
        *,
        provider: Provider,
        model: str,
        system: str,
        history_json: str,
        messages: list[ModelMessage],
        tools: dict[str, Tool],
        tool_context: ToolContext,
        limits: LoopLimits,
        emit: Emit,
        recorder: Recorder,
    ) -> None:
        self.provider = provider
        self.model = model
        self.system = system
        self.history_json = history_json
        self.messages = messages
        self.tools = tools
        self.tool_specs = [tool.as_model_spec() for tool in tools.values()]
        self.tool_context = tool_context
        self.limits = limits
        self.emit = emit
        self.recorder = recorder
        self.usage = UsageTotals()
        self.all_text: list[str] = []
        self.all_tool_calls: list[ToolCallRecord] = []

    def outcome(self, reason: events.DoneReason) -> LoopOutcome:
        return LoopOutcome(reason, self.usage, "\n\n".join(t for t in self.all_text if t), self.all_tool_calls)

    async def run(self) -> LoopOutcome:
        for _ in range(self.limits.max_turns):
            if self.over_budget():
                await self.emit(
                    events.error("budget_exceeded", "This conversation has used its token budget, so I stopped.")
                )
                return self.outcome("budget_exceeded")
            turn = Turn(model=self.model)
            try:
                await self.call_model(turn)
            except ProviderError as exc:
                turn.usage, turn.error_code = exc.usage, exc.code
                await self.end_call(turn, finished=True)
                await self.emit(events.error(exc.code, exc.message))
                return self.outcome("error")
            await self.end_call(turn, finished=not turn.tool_uses)
            if not turn.tool_uses:
                return self.outcome("model_stop")
            await self.run_tools(turn)
            # A new list: the ModelRequest of the call just made keeps the messages it was sent.
            self.messages = [*self.messages, *conversation_blocks(turn)]
        await self.emit(
            events.error("max_turns", f"I stopped after {self.limits.max_turns} model calls for one message.")
        )
        return self.outcome("max_turns")

    def over_budget(self) -> bool:
        budget = self.limits.max_session_tokens
        return budget is not None and self.limits.session_tokens_before + self.usage.total_tokens >= budget

    async def call_model(self, turn: Turn) -> None:
        request = ModelRequest(
            model=self.model,
            system=self.system,
            history_json=self.history_json,
            messages=self.messages,
            tools=self.tool_specs,
        )
        started = time.monotonic()
        self.recorder.begin_call()
        try:
            async for item in self.provider.stream(request):
                if isinstance(item, TextDelta):
                    turn.text += item.text
                    await self.emit(events.text_delta(item.text))
                    if self.recorder.checkpoint_due():
                        await self.recorder.checkpoint(turn)
                elif isinstance(item, ToolUse):
                    turn.tool_uses.append(item)
                elif isinstance(item, UsageSoFar):
                    turn.usage = item.usage
                elif isinstance(item, TurnEnd):
                    turn.usage, turn.model = item.usage, item.model
        except asyncio.CancelledError:
            turn.interrupted = True
            turn.usage = estimated_usage(turn, request)
            turn.latency_ms = elapsed_ms(started)
            await self.end_call(turn, finished=True)
            raise
        finally:
            turn.latency_ms = elapsed_ms(started)

    async def run_tools(self, turn: Turn) -> None:
        for index, use in enumerate(turn.tool_uses):
            try:
                turn.tool_calls.append(await self.run_tool(use))
            except asyncio.CancelledError:
                turn.interrupted = True
                turn.tool_calls += [ToolCallRecord.cut_off(pending) for pending in turn.tool_uses[index:]]
                self.all_tool_calls += turn.tool_calls
                await self.recorder.tool_finished(turn, last=True)
                raise
            await self.recorder.tool_finished(turn, last=index == len(turn.tool_uses) - 1)
        self.all_tool_calls += turn.tool_calls

    async def run_tool(self, use: ToolUse) -> ToolCallRecord:
        await self.emit(events.tool_call_start(tool_id=use.id, tool_name=use.name, parameters=use.input))
        started = time.monotonic()
        result = await self.execute(use)
        call = ToolCallRecord.finished(
            use, content=result.content, is_error=result.is_error, duration_ms=elapsed_ms(started)
        )
        for extra in result.extra_events:
            await self.emit(extra)
        await self.emit(
            events.tool_call_result(
                tool_id=use.id, status=call.status, duration_ms=call.duration_ms, output=call.output
            )
        )
        return call

    async def execute(self, use: ToolUse) -> ToolResult:
        tool = self.tools.get(use.name)
        if tool is None:
            return ToolResult(f"There is no tool named {use.name!r}.", is_error=True)
        timeout = self.limits.tool_timeout_seconds
        try:
            context = replace(self.tool_context, tool_id=use.id)
            return await asyncio.wait_for(tool.run(context, use.input), timeout)
        except TimeoutError:
            return ToolResult(f"The tool {use.name} did not finish within {timeout:g} seconds.", is_error=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.exception("tool %s failed", use.name)
            return ToolResult(f"The tool {use.name} failed unexpectedly ({type(exc).__name__}).", is_error=True)

    async def end_call(self, turn: Turn, *, finished: bool) -> None:
        """The model call has ended: record it (with its usage, as soon as it is known) and report it."""
        usage = turn.usage or TokenUsage()
        turn.usage = usage
        cost = await self.recorder.call_ended(turn, finished=finished)
        self.usage.add(usage, cost)
        self.all_text.append(turn.text)
        if not turn.interrupted:
            await self.emit(events.usage(model=turn.model, **usage.counts(), cost_micros=cost))


def elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def estimated_usage(turn: Turn, request: ModelRequest) -> TokenUsage:
    """Usage of a call cut off mid-stream: what the provider reported so far, else an estimate."""
    known = turn.usage or TokenUsage(input_tokens=request.estimated_input_tokens())
    output = max(known.output_tokens, estimate_tokens(turn.text) if turn.text else 0)
    return TokenUsage(known.input_tokens, output, known.cache_read_tokens, known.cache_write_tokens)


def conversation_blocks(turn: Turn) -> list[ModelMessage]:
    """The assistant turn and its tool results, in the Messages API shape (the model's own arguments,
    unredacted, as it sent them)."""
    content: list = [text_block(turn.text)] if turn.text else []
    content += [tool_use_block(use.id, use.name, use.input) for use in turn.tool_uses]
    return [
        {"role": "assistant", "content": content},
        {"role": "user", "content": [call.result_block() for call in turn.tool_calls]},
    ]
