"""Claude through the official SDK: async, streamed, with tool use and prompt caching.

The request body is written here, not by `messages.create`: the SDK's parameter transform walks every
message on every call, and over a long session that costs more than everything else in a message
together. `request_body` writes the same bytes the SDK would (same keys, same order, same JSON
encoding: tests/agents/test_anthropic_provider.py compares them on the wire) from a history that is
already serialised, and the SDK still sends it: its client, headers, retries, timeouts, errors and
stream parsing are all used as they are.

Retries: the SDK retries 408/409/429/5xx and `overloaded` (529) responses with exponential backoff and
honours `retry-after`; we give it `MAX_RETRIES`. An error *inside* a stream that already produced output
cannot be retried without duplicating text, so it ends the message (the loop saves the partial turn).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import anthropic
import httpx
from anthropic import AsyncStream
from anthropic.types import RawMessageStreamEvent
from django.conf import settings

from agents.runtime.providers.base import (
    ModelRequest,
    ProviderError,
    ProviderEvent,
    TextDelta,
    TokenUsage,
    ToolUse,
    TurnEnd,
    UsageSoFar,
)
from agents.runtime.wire import encode_json

logger = logging.getLogger(__name__)

MAX_RETRIES = 4
EPHEMERAL = {"type": "ephemeral"}
MESSAGES_PATH = "/v1/messages"

ERROR_MESSAGES = {
    "overloaded_error": ("model_overloaded", "The model is overloaded right now; please try again shortly."),
    # Not `rate_limited`, which is this server's own 429 to the caller: the model's limit is the deployment's,
    # reached by every tenant together, and nothing the caller did.
    "rate_limit_error": ("model_rate_limited", "The model's rate limit was reached; please try again shortly."),
    "authentication_error": ("model_auth_failed", "The server's model credentials were refused."),
    "permission_error": ("model_auth_failed", "The server's model credentials were refused."),
    "invalid_request_error": ("model_request_invalid", "The model rejected the request."),
}


def provider_error(exc: anthropic.APIError, usage: TokenUsage) -> ProviderError:
    body = getattr(exc, "body", None)
    error_type = ""
    if isinstance(body, dict):
        error_type = (body.get("error") or {}).get("type", "") if isinstance(body.get("error"), dict) else ""
    if not error_type and isinstance(exc, anthropic.APIStatusError):
        error_type = {429: "rate_limit_error", 529: "overloaded_error"}.get(exc.status_code, "")
    if isinstance(exc, anthropic.APIConnectionError):
        return ProviderError("model_unavailable", "The model could not be reached; please try again.", usage)
    code, message = ERROR_MESSAGES.get(error_type, ("model_error", "The model call failed; please try again."))
    return ProviderError(code, message, usage)


def stream_failure(exc: Exception, usage: TokenUsage) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError("model_timeout", "The model did not answer in time; please try again.", usage)
    if isinstance(exc, httpx.HTTPError):
        return ProviderError("model_unavailable", "The connection to the model broke; please try again.", usage)
    return ProviderError("model_error", "The model sent an answer that could not be read; please try again.", usage)


def cached_system(system: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": system, "cache_control": EPHEMERAL}]


def cached_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark the last tool, so the tool definitions (and the system prompt before them) are cached."""
    if not tools:
        return []
    return [*tools[:-1], {**tools[-1], "cache_control": EPHEMERAL}]


def request_body(request: ModelRequest) -> bytes:
    """The body `messages.create(max_tokens=, messages=, model=, stream=True, system=, tools=)` sends:
    its keys in the SDK's order, encoded as the SDK encodes them, the history spliced in as it is."""
    fields = [
        f'"max_tokens":{encode_json(request.max_tokens)}',
        f'"messages":{request.messages_json()}',
        f'"model":{encode_json(request.model)}',
        '"stream":true',
        f'"system":{encode_json(cached_system(request.system))}',
    ]
    if request.tools:
        fields.append(f'"tools":{encode_json(cached_tools(request.tools))}')
    return ("{" + ",".join(fields) + "}").encode()


class AnthropicProvider:
    name = "anthropic"
    _shared: ClassVar[dict[tuple[str | None, str | None], AnthropicProvider]] = {}

    def __init__(self, *, base_url: str | None, api_key: str | None) -> None:
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=MAX_RETRIES, timeout=settings.AMODAL_MODEL_TIMEOUT_SECONDS
        )

    @classmethod
    def shared(cls, *, base_url: str | None, api_key: str | None) -> AnthropicProvider:
        """One client (and connection pool) per endpoint and key, reused across messages."""
        key = (base_url, api_key)
        if key not in cls._shared:
            cls._shared[key] = cls(base_url=base_url, api_key=api_key)
        return cls._shared[key]

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        call = StreamedCall(model=request.model)
        try:
            stream = await self.client.post(
                MESSAGES_PATH,
                content=request_body(request),
                cast_to=anthropic.types.Message,
                stream=True,
                stream_cls=AsyncStream[RawMessageStreamEvent],
            )
            async with stream:
                async for event in stream:
                    if (item := call.read(event)) is not None:
                        yield item
        except anthropic.APIError as exc:
            logger.warning("anthropic call failed: %s", type(exc).__name__)
            raise provider_error(exc, call.usage())
        except (httpx.HTTPError, ValueError) as exc:
            # Past the response headers the SDK lets these through: a read timeout or a dropped
            # connection (httpx), an event that is not JSON (ValueError).
            logger.warning("anthropic stream broke: %s", type(exc).__name__)
            raise stream_failure(exc, call.usage())
        if not call.stopped:
            logger.warning("anthropic stream ended without message_stop")
            raise ProviderError(
                "model_stream_incomplete", "The model's answer was cut off; please try again.", call.usage()
            )
        yield TurnEnd(stop_reason=call.stop_reason, usage=call.usage(), model=call.model)


@dataclass
class StreamedCall:
    """What one streamed Messages API call has said so far, read event by event."""

    model: str
    stop_reason: str = "end_turn"
    tokens: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"), 0
        )
    )
    tool_id: str = ""
    tool_name: str = ""
    tool_json: list[str] | None = None  # the arguments of the tool_use block being streamed, if any
    stopped: bool = False  # message_stop arrived: the answer is complete

    def usage(self) -> TokenUsage:
        return TokenUsage(**self.tokens)

    def read(self, event: Any) -> ProviderEvent | None:
        if event.type == "message_start":
            return self.message_start(event.message)
        if event.type == "content_block_start" and event.content_block.type == "tool_use":
            self.tool_id, self.tool_name, self.tool_json = event.content_block.id, event.content_block.name, []
        elif event.type == "content_block_delta":
            return self.block_delta(event.delta)
        elif event.type == "content_block_stop" and self.tool_json is not None:
            use = ToolUse(self.tool_id, self.tool_name, parse_tool_input("".join(self.tool_json)))
            self.tool_json = None
            return use
        elif event.type == "message_stop":
            self.stopped = True
        elif event.type == "message_delta":
            self.stop_reason = event.delta.stop_reason or self.stop_reason
            if event.usage and event.usage.output_tokens is not None:
                self.tokens["output_tokens"] = event.usage.output_tokens
        return None

    def message_start(self, message: Any) -> UsageSoFar:
        self.model = message.model or self.model
        usage = message.usage
        self.tokens.update(
            input_tokens=usage.input_tokens or 0,
            output_tokens=usage.output_tokens or 0,
            cache_read_tokens=usage.cache_read_input_tokens or 0,
            cache_write_tokens=usage.cache_creation_input_tokens or 0,
        )
        return UsageSoFar(self.usage())

    def block_delta(self, delta: Any) -> TextDelta | None:
        if delta.type == "text_delta" and delta.text:
            return TextDelta(delta.text)
        if delta.type == "input_json_delta" and self.tool_json is not None:
            self.tool_json.append(delta.partial_json)
        return None


def parse_tool_input(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_invalid_json": raw}
    return value if isinstance(value, dict) else {"value": value}
