"""The events of a chat stream (`POST /chat/stream`, SPEC §3), one frozen dataclass per event type.

Every event has its `type` (a literal string, so `event.type == "text_delta"` and `isinstance` both tell them
apart), its `timestamp` and `raw`, the JSON object it was read from. Forward compatible: a field the client
does not know is ignored (still in `raw`), and an event type it does not know is an `UnknownEvent` carrying
the raw data, never an error. A known event missing a field the contract promises is a `ProtocolError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from amodal_client._fields import Fields
from amodal_client.errors import ProtocolError
from amodal_client.models import MessageUsage


@dataclass(frozen=True, kw_only=True)
class InitEvent:
    """Always first, sent before the model is called: the session (new or resumed) can be shown and
    cancelled at once."""

    session_id: str
    scope_id: str
    deploy_id: str
    timestamp: datetime
    raw: dict[str, Any] = field(repr=False, compare=False)
    type: Literal["init"] = "init"


@dataclass(frozen=True, kw_only=True)
class TextDeltaEvent:
    """The next piece of the assistant's answer."""

    content: str
    timestamp: datetime
    raw: dict[str, Any] = field(repr=False, compare=False)
    type: Literal["text_delta"] = "text_delta"


@dataclass(frozen=True, kw_only=True)
class ToolCallStartEvent:
    """The agent calls a tool; values of secret-looking keys in `parameters` are "[REDACTED]"."""

    tool_id: str
    tool_name: str
    parameters: dict[str, Any]
    timestamp: datetime
    raw: dict[str, Any] = field(repr=False, compare=False)
    type: Literal["tool_call_start"] = "tool_call_start"


@dataclass(frozen=True, kw_only=True)
class ToolCallResultEvent:
    """A tool call ended: `status` is "success" with `result` (capped at 50 000 characters), or "error" with
    `error`."""

    tool_id: str
    status: str
    duration_ms: int
    result: str | None
    error: str | None
    timestamp: datetime
    raw: dict[str, Any] = field(repr=False, compare=False)
    type: Literal["tool_call_result"] = "tool_call_result"

    @property
    def ok(self) -> bool:
        return self.status == "success"


@dataclass(frozen=True, kw_only=True)
class ConfirmationRequiredEvent:
    """A write the agent wants to make waits for the user's approval. Answer with the next message of the
    same session: `approve_message()` or `deny_message()`."""

    tool_id: str
    correlation_id: str
    connection: str
    method: str
    endpoint: str
    reason: str
    escalated: bool
    params: dict[str, Any]
    timestamp: datetime
    raw: dict[str, Any] = field(repr=False, compare=False)
    type: Literal["confirmation_required"] = "confirmation_required"

    def approve_message(self) -> str:
        return f"I approve the action (correlation: {self.correlation_id})"

    def deny_message(self) -> str:
        return f"I deny the action (correlation: {self.correlation_id})"


@dataclass(frozen=True, kw_only=True)
class UsageEvent:
    """The tokens and cost of one model call (`cost_micros` is None when the model has no price)."""

    model: str
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost_micros: int | None
    timestamp: datetime
    raw: dict[str, Any] = field(repr=False, compare=False)
    type: Literal["usage"] = "usage"


@dataclass(frozen=True, kw_only=True)
class ErrorEvent:
    """Something went wrong after the stream started (e.g. `budget_exceeded`, `service_unavailable`,
    `provider_error`): yielded, not raised; the stream still ends with `done`."""

    code: str
    message: str
    timestamp: datetime
    raw: dict[str, Any] = field(repr=False, compare=False)
    type: Literal["error"] = "error"


@dataclass(frozen=True, kw_only=True)
class DoneEvent:
    """Always last. `reason`: model_stop, max_turns, user_abort, error or budget_exceeded; `usage`: this
    message's totals; `message_id`: the saved assistant message (what feedback rates), None if none was."""

    reason: str
    usage: MessageUsage
    message_id: str | None
    timestamp: datetime
    raw: dict[str, Any] = field(repr=False, compare=False)
    type: Literal["done"] = "done"


@dataclass(frozen=True, kw_only=True)
class UnknownEvent:
    """An event type this client does not know (a newer server's): `type` and the whole `raw` object."""

    type: str
    raw: dict[str, Any] = field(repr=False)


Event = (
    InitEvent
    | TextDeltaEvent
    | ToolCallStartEvent
    | ToolCallResultEvent
    | ConfirmationRequiredEvent
    | UsageEvent
    | ErrorEvent
    | DoneEvent
    | UnknownEvent
)


def _init(f: Fields) -> InitEvent:
    return InitEvent(
        session_id=f.text("session_id"),
        scope_id=f.text("scope_id"),
        deploy_id=f.text("deploy_id"),
        timestamp=f.time("timestamp"),
        raw=f.data,
    )


def _text_delta(f: Fields) -> TextDeltaEvent:
    return TextDeltaEvent(content=f.text("content"), timestamp=f.time("timestamp"), raw=f.data)


def _tool_call_start(f: Fields) -> ToolCallStartEvent:
    return ToolCallStartEvent(
        tool_id=f.text("tool_id"),
        tool_name=f.text("tool_name"),
        parameters=f.obj("parameters"),
        timestamp=f.time("timestamp"),
        raw=f.data,
    )


def _tool_call_result(f: Fields) -> ToolCallResultEvent:
    return ToolCallResultEvent(
        tool_id=f.text("tool_id"),
        status=f.text("status"),
        duration_ms=f.integer("duration_ms"),
        result=f.opt_text("result"),
        error=f.opt_text("error"),
        timestamp=f.time("timestamp"),
        raw=f.data,
    )


def _confirmation_required(f: Fields) -> ConfirmationRequiredEvent:
    return ConfirmationRequiredEvent(
        tool_id=f.text("tool_id"),
        correlation_id=f.text("correlation_id"),
        connection=f.text("connection"),
        method=f.text("method"),
        endpoint=f.text("endpoint"),
        reason=f.text("reason", ""),
        escalated=f.flag("escalated", False),
        params=f.obj("params"),
        timestamp=f.time("timestamp"),
        raw=f.data,
    )


def _usage(f: Fields) -> UsageEvent:
    return UsageEvent(
        model=f.text("model"),
        input_tokens=f.integer("input_tokens"),
        output_tokens=f.integer("output_tokens"),
        cache_read_tokens=f.integer("cache_read_tokens"),
        cache_write_tokens=f.integer("cache_write_tokens"),
        cost_micros=f.opt_integer("cost_micros"),
        timestamp=f.time("timestamp"),
        raw=f.data,
    )


def _error(f: Fields) -> ErrorEvent:
    return ErrorEvent(code=f.text("code"), message=f.text("message"), timestamp=f.time("timestamp"), raw=f.data)


def _done(f: Fields) -> DoneEvent:
    return DoneEvent(
        reason=f.text("reason"),
        usage=MessageUsage.from_json(f.obj("usage"), "the done event's usage"),
        message_id=f.opt_text("message_id"),
        timestamp=f.time("timestamp"),
        raw=f.data,
    )


PARSERS: dict[str, Callable[[Fields], Event]] = {
    "init": _init,
    "text_delta": _text_delta,
    "tool_call_start": _tool_call_start,
    "tool_call_result": _tool_call_result,
    "confirmation_required": _confirmation_required,
    "usage": _usage,
    "error": _error,
    "done": _done,
}


def parse_event(data: str) -> Event:
    """One event from the JSON of a `data:` frame (or of a WebSocket message)."""
    try:
        raw = json.loads(data)
    except ValueError:
        raise ProtocolError(f"An event is not JSON: {data!r:.200}") from None
    fields = Fields(raw, "an event")
    kind = fields.text("type")
    parser = PARSERS.get(kind)
    if parser is None:
        return UnknownEvent(type=kind, raw=fields.data)
    return parser(Fields(raw, f"the {kind} event"))
