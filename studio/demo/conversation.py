"""One demo conversation, planned as offsets in seconds from its start (the session anchors it in time).

A turn is a user message and 1-4 model calls; every call but the last of a turn makes tool calls. Token
counts grow with the conversation; Anthropic sessions mostly use prompt caching (cache writes on the first
call, cache reads after). Some sessions end interrupted (the last call cut off, its pending tool calls
cancelled) or with an error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from studio.demo.content import FOLLOW_UPS, INTERRUPTED_TEXT, TOOL_PREAMBLES
from studio.demo.tool_calls import tool_call

ERROR_CODES = ["overloaded_error", "rate_limit_error", "max_turns", "budget_exceeded", "api_error"]


@dataclass(frozen=True)
class DemoModel:
    provider: str
    name: str
    first_token_ms: int
    ms_per_token: float
    price: Any


@dataclass(frozen=True)
class UserMessage:
    offset: float  # seconds from the start of the session
    text: str


@dataclass(frozen=True)
class ModelCall:
    offset: float
    text: str | None  # None: a final answer, written once its moment is known
    tools: list[dict[str, Any]]
    interrupted: bool
    error_code: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    latency_ms: int


Event = UserMessage | ModelCall


def plan_conversation(
    rng: random.Random,
    model: DemoModel,
    *,
    status: str,
    calls: int,
    first_prompt: str,
    start: datetime,
    caching: bool,
    system_tokens: int,
) -> tuple[list[Event], float]:
    """The conversation as offsets from its start, and how long it lasts in seconds. A turn is a user
    message and 1-4 model calls; every call but the last of a turn makes tool calls. An interrupted
    session's last call is cut off (its tool calls cancelled); an erroring one's fails."""
    events: list[Event] = []
    history = 0  # tokens of the conversation so far, sent again with every call
    offset = 0.0
    remaining = calls
    turn = 0
    while remaining > 0 or turn == 0:
        text = first_prompt if turn == 0 else rng.choice(FOLLOW_UPS)
        events.append(UserMessage(offset, text))
        history += len(text) // 4 + 4
        in_turn = min(remaining, rng.choices([1, 2, 3, 4], [30, 45, 18, 7])[0]) if remaining else 0
        for call_index in range(in_turn):
            last_of_session = remaining == 1
            with_tools = call_index < in_turn - 1 or (
                last_of_session and status == "interrupted" and rng.random() < 0.5
            )
            interrupted = last_of_session and status == "interrupted"
            error_code = rng.choice(ERROR_CODES) if last_of_session and status == "error" else ""
            output = int(rng.lognormvariate(4.2 if with_tools else 5.3, 0.5)) + 8
            if error_code:
                output = 0 if error_code in ("overloaded_error", "rate_limit_error", "api_error") else output
            latency = int(model.first_token_ms * rng.uniform(0.6, 1.8) + output * model.ms_per_token)
            offset += latency / 1000
            tools: list[dict[str, Any]] = []
            tool_ms = 0
            if with_tools and not error_code:
                tools, tool_ms, tool_tokens = _tool_calls(rng, start, interrupted=interrupted)
                history += tool_tokens
            reply: str | None
            if error_code:
                reply = ""
            elif interrupted:
                reply = INTERRUPTED_TEXT.format(d1=start.date().isoformat())
            elif with_tools:
                reply = rng.choice(TOOL_PREAMBLES)
            else:
                reply = None
            input_tokens, cache_read, cache_write = _prompt_tokens(
                rng, history, first_call=not (turn or call_index), caching=caching, system_tokens=system_tokens
            )
            events.append(
                ModelCall(
                    offset,
                    reply,
                    tools,
                    interrupted,
                    error_code,
                    input_tokens,
                    output,
                    cache_read,
                    cache_write,
                    latency,
                )
            )
            offset += tool_ms / 1000
            history += output
            remaining -= 1
        turn += 1
        if remaining > 0:
            offset += rng.choice([rng.uniform(8, 90), rng.uniform(30, 600), rng.uniform(600, 5400)])
    return events, offset


def _tool_calls(rng: random.Random, start: datetime, *, interrupted: bool) -> tuple[list[dict[str, Any]], int, int]:
    """1-3 tool calls of one model call: the calls, their total duration in ms and the tokens they add
    to the history. An interrupted call's tool calls were cancelled."""
    tools = []
    total_ms = 0
    tokens = 0
    for _ in range(rng.choices([1, 2, 3], [70, 24, 6])[0]):
        call, duration = tool_call(rng, start, failed=rng.random() < 0.08)
        if interrupted:
            call.pop("result", None)
            call.update(status="error", error="Cancelled before it finished.", duration_ms=0)
            duration = 0
        tools.append(call)
        total_ms += duration
        tokens += len(call.get("result") or call.get("error") or "") // 4 + 30
    return tools, total_ms, tokens


def _prompt_tokens(
    rng: random.Random, history: int, *, first_call: bool, caching: bool, system_tokens: int
) -> tuple[int, int, int]:
    """Input, cache-read and cache-write tokens of one call. With caching, the first call of a session
    writes the system prompt to the cache and later calls read it (and most of the history) back."""
    uncached = history + (0 if caching else system_tokens)
    cache_read = system_tokens + max(0, history - 400) if caching and not first_call else 0
    if caching and cache_read:
        uncached = min(uncached, 400 + rng.randint(0, 300))
    cache_write = (
        system_tokens if caching and first_call else (rng.randint(100, 600) if caching and rng.random() < 0.3 else 0)
    )
    return uncached + rng.randint(0, 60), cache_read, cache_write
