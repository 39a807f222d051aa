"""The events of a chat stream (SPEC §3) as typed records, and secret redaction.

Each event type is a TypedDict: building one is building the plain dict that is sent (no cost on the
hot path), mypy checks every emitter against it, and core.event_schemas publishes the same records as
JSON Schemas (docs/schemas/events/), so the contract and the server cannot drift. Emitters build events
through the functions below (`text_delta(...)`, `done(...)`), which also stamp the `timestamp`.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, NotRequired

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict  # pydantic reads typing's TypedDict only from Python 3.12

REDACTED = "[REDACTED]"
MAX_RESULT_CHARS = 50_000
# A key is secret-looking when one of its words is one of these (`auth_token`, `accessToken`,
# `X-API-Key`), judged word by word so `author` or `oauth_provider` are not.
SECRET_WORDS = {
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "auth",
    "credential",
    "credentials",
    "cookie",
    "signature",
}
SECRET_WORD_PAIRS = {("api", "key"), ("private", "key"), ("access", "key"), ("session", "key"), ("secret", "key")}
KEY_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_key(key: str) -> bool:
    words = [word.lower() for word in KEY_WORD.findall(key)]
    if SECRET_WORDS.intersection(words):
        return True
    return any(pair in SECRET_WORD_PAIRS for pair in itertools.pairwise(words))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def redact(value: Any) -> Any:
    """Replace the values of keys that look like secrets, at any depth."""
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def cap(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit]


# Shapes of credentials a user might paste: provider keys, our API keys, JWTs, bearer headers.
TOKEN_SHAPES = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{10,}"
    r"|\bak_[A-Za-z0-9_\-]{20,}"
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{16,}"
    r"|\b(?:ghp|gho|github_pat|xox[abpr]|AKIA)[A-Za-z0-9_\-]{12,}"
)


def scrub_secrets(text: str) -> str:
    """Replace token-shaped substrings before text is saved (the model still sees the message)."""
    return TOKEN_SHAPES.sub(REDACTED, text)


# --- The events --------------------------------------------------------------------------------------

# A closed record: an undocumented field is a drift the schema tests catch. Clients should still
# ignore fields and event types they do not know (a later version may add some).
EVENT_CONFIG = ConfigDict(extra="forbid")

Timestamp = Annotated[
    str,
    Field(
        description="When the server sent the event: ISO-8601 UTC with milliseconds (2026-01-31T12:00:00.000Z).",
        json_schema_extra={"format": "date-time"},
    ),
]
DoneReason = Literal["model_stop", "max_turns", "user_abort", "error", "budget_exceeded"]
ToolStatus = Literal["success", "error"]
# The codes an `error` event is known to carry (the stream's own and core.errors' classes'). The schema
# lists them as examples, not as a closed set: a model provider may add its own codes.
KNOWN_ERROR_CODES = (
    "budget_exceeded",
    "max_turns",
    "model_unavailable",
    "model_timeout",
    "model_error",
    "model_overloaded",
    "model_rate_limited",
    "model_auth_failed",
    "model_request_invalid",
    "rate_limited",
    "service_unavailable",
    "internal_error",
    "session_busy",
    "session_not_found",
    "validation_error",
    "invalid_json",
    "invalid_scope",
    "scope_required",
    "scope_forbidden",
    "model_override_forbidden",
    "authentication_required",
    "invalid_token",
    "token_expired",
)


@with_config(EVENT_CONFIG)
class InitEvent(TypedDict):
    """Always first, sent before the model is called: a client can show and cancel the session at once."""

    type: Literal["init"]
    session_id: Annotated[str, Field(description="The session (new when the request named none).")]
    scope_id: str
    deploy_id: Annotated[str, Field(description="The agent folder version that answers.")]
    timestamp: Timestamp


@with_config(EVENT_CONFIG)
class TextDeltaEvent(TypedDict):
    """The next piece of the assistant's text."""

    type: Literal["text_delta"]
    content: Annotated[str, Field(min_length=1)]
    timestamp: Timestamp


@with_config(EVENT_CONFIG)
class ToolCallStartEvent(TypedDict):
    """The model called a tool."""

    type: Literal["tool_call_start"]
    tool_id: str
    tool_name: str
    parameters: Annotated[
        dict[str, Any],
        Field(description='The arguments; values of keys that look like secrets are "[REDACTED]".'),
    ]
    timestamp: Timestamp


# `result` when the call succeeded, `error` when it failed: never both.
RESULT_OR_ERROR: dict[str, Any] = {
    "oneOf": [
        {"properties": {"status": {"const": "success"}}, "required": ["result"], "not": {"required": ["error"]}},
        {"properties": {"status": {"const": "error"}}, "required": ["error"], "not": {"required": ["result"]}},
    ]
}


@with_config(ConfigDict(extra="forbid", json_schema_extra=RESULT_OR_ERROR))
class ToolCallResultEvent(TypedDict):
    """A tool call ended: `result` when its status is success, `error` when it is error."""

    type: Literal["tool_call_result"]
    tool_id: Annotated[str, Field(description="The tool_id of its tool_call_start.")]
    status: ToolStatus
    duration_ms: Annotated[int, Field(ge=0)]
    result: NotRequired[Annotated[str, Field(max_length=MAX_RESULT_CHARS)]]
    error: NotRequired[Annotated[str, Field(max_length=MAX_RESULT_CHARS)]]
    timestamp: Timestamp


@with_config(EVENT_CONFIG)
class ConfirmationRequiredEvent(TypedDict):
    """A connection call needs the user's approval: show Approve/Deny and send `I approve the action
    (correlation: <correlation_id>)` or `I deny the action (correlation: <correlation_id>)`."""

    type: Literal["confirmation_required"]
    tool_id: str
    correlation_id: Annotated[str, Field(description="Equal to tool_id.")]
    connection: str
    connection_name: Annotated[str, Field(description="Equal to connection.")]
    method: str
    endpoint: str
    reason: Annotated[str, Field(description="The access rule's reason; may be empty.")]
    escalated: bool
    params: Annotated[
        dict[str, Any], Field(description="{params, data} of the call, redacted like tool_call_start's parameters.")
    ]
    timestamp: Timestamp


Count = Annotated[int, Field(ge=0)]
CostMicros = Annotated[int | None, Field(description="Cost in millionths of a dollar; null when a model has no price.")]


@with_config(EVENT_CONFIG)
class UsageEvent(TypedDict):
    """The usage of one model call, sent when the call ends."""

    type: Literal["usage"]
    model: str
    input_tokens: Count
    output_tokens: Count
    cache_read_tokens: Count
    cache_write_tokens: Count
    cost_micros: CostMicros
    timestamp: Timestamp


@with_config(EVENT_CONFIG)
class ErrorEvent(TypedDict):
    """Something went wrong (also sent just before a `done` whose reason is max_turns or budget_exceeded,
    so a user sees why it stopped). On a WebSocket, also a refused frame or request; the socket stays open."""

    type: Literal["error"]
    code: Annotated[
        str,
        Field(
            pattern="^[a-z][a-z0-9_]*$",
            description=f"snake_case: {', '.join(KNOWN_ERROR_CODES)}, or another a model provider reports.",
            examples=list(KNOWN_ERROR_CODES),
        ),
    ]
    message: Annotated[str, Field(description="A readable sentence for the user.")]
    timestamp: Timestamp


@with_config(EVENT_CONFIG)
class MessageUsage(TypedDict):
    """A message's usage, summed over its model calls (`done`, and /chat/sync's `usage`)."""

    input_tokens: Count
    output_tokens: Count
    cache_read_tokens: Count
    cache_write_tokens: Count
    total_tokens: Annotated[int, Field(ge=0, description="input_tokens + output_tokens.")]
    cost_micros: CostMicros


@with_config(EVENT_CONFIG)
class DoneEvent(TypedDict):
    """Always last, also after an error."""

    type: Literal["done"]
    reason: DoneReason
    usage: MessageUsage
    message_id: Annotated[
        str | None,
        Field(description="The saved assistant message (what feedback rates); null when none was saved."),
    ]
    timestamp: Timestamp


@with_config(EVENT_CONFIG)
class AuthOkEvent(TypedDict):
    """WebSocket only: the token was accepted."""

    type: Literal["auth_ok"]
    timestamp: Timestamp


ChatEvent = (
    InitEvent
    | TextDeltaEvent
    | ToolCallStartEvent
    | ToolCallResultEvent
    | ConfirmationRequiredEvent
    | UsageEvent
    | ErrorEvent
    | DoneEvent
    | AuthOkEvent
)


def init(*, session_id: str, scope_id: str, deploy_id: str) -> InitEvent:
    return {
        "type": "init",
        "session_id": session_id,
        "scope_id": scope_id,
        "deploy_id": deploy_id,
        "timestamp": now_iso(),
    }


def text_delta(content: str) -> TextDeltaEvent:
    return {"type": "text_delta", "content": content, "timestamp": now_iso()}


def tool_call_start(*, tool_id: str, tool_name: str, parameters: dict[str, Any]) -> ToolCallStartEvent:
    """`parameters` as the model sent them: redacted here."""
    return {
        "type": "tool_call_start",
        "tool_id": tool_id,
        "tool_name": tool_name,
        "parameters": redact(parameters),
        "timestamp": now_iso(),
    }


def tool_call_result(*, tool_id: str, status: ToolStatus, duration_ms: int, output: str) -> ToolCallResultEvent:
    item: ToolCallResultEvent = {
        "type": "tool_call_result",
        "tool_id": tool_id,
        "status": status,
        "duration_ms": duration_ms,
        "timestamp": now_iso(),
    }
    if status == "error":
        item["error"] = output
    else:
        item["result"] = output
    return item


def confirmation_required(
    *, tool_id: str, connection: str, method: str, endpoint: str, reason: str, params: dict[str, Any]
) -> ConfirmationRequiredEvent:
    """`params` as the model sent them: redacted here."""
    return {
        "type": "confirmation_required",
        "tool_id": tool_id,
        "correlation_id": tool_id,
        "connection": connection,
        "connection_name": connection,
        "method": method,
        "endpoint": endpoint,
        "reason": reason,
        "escalated": False,
        "params": redact(params),
        "timestamp": now_iso(),
    }


def usage(
    *,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int,
    cache_write_tokens: int,
    cost_micros: int | None,
) -> UsageEvent:
    return {
        "type": "usage",
        "model": model,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "cost_micros": cost_micros,
        "timestamp": now_iso(),
    }


def error(code: str, message: str) -> ErrorEvent:
    return {"type": "error", "code": code, "message": message, "timestamp": now_iso()}


def done(*, reason: DoneReason, usage: MessageUsage, message_id: str | None) -> DoneEvent:
    return {"type": "done", "reason": reason, "usage": usage, "message_id": message_id, "timestamp": now_iso()}


def auth_ok() -> AuthOkEvent:
    return {"type": "auth_ok", "timestamp": now_iso()}
