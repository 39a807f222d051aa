"""Claude through the official SDK: async, streamed, with tool use and prompt caching.

Retries: the SDK retries 408/409/429/5xx and `overloaded` (529) responses with exponential backoff and
honours `retry-after`; we give it `MAX_RETRIES`. An error *inside* a stream that already produced output
cannot be retried without duplicating text, so it ends the message (the loop saves the partial turn).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import anthropic

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

logger = logging.getLogger(__name__)

MAX_RETRIES = 4
REQUEST_TIMEOUT_SECONDS = 600.0
EPHEMERAL = {"type": "ephemeral"}

ERROR_MESSAGES = {
    "overloaded_error": ("model_overloaded", "The model is overloaded right now; please try again shortly."),
    "rate_limit_error": ("rate_limited", "The model's rate limit was reached; please try again shortly."),
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


def cached_system(system: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": system, "cache_control": EPHEMERAL}]


def cached_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mark the last tool, so the tool definitions (and the system prompt before them) are cached."""
    if not tools:
        return []
    return [*tools[:-1], {**tools[-1], "cache_control": EPHEMERAL}]


class AnthropicProvider:
    name = "anthropic"
    _shared: ClassVar[dict[tuple[str | None, str | None], AnthropicProvider]] = {}

    def __init__(self, *, base_url: str | None, api_key: str | None) -> None:
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, max_retries=MAX_RETRIES, timeout=REQUEST_TIMEOUT_SECONDS
        )

    @classmethod
    def shared(cls, *, base_url: str | None, api_key: str | None) -> AnthropicProvider:
        """One client (and connection pool) per endpoint and key, reused across messages."""
        key = (base_url, api_key)
        if key not in cls._shared:
            cls._shared[key] = cls(base_url=base_url, api_key=api_key)
        return cls._shared[key]

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        usage: dict[str, int] = dict.fromkeys(
            ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"), 0
        )
        stop_reason = "end_turn"
        model = request.model
        tool: dict[str, Any] | None = None
        kwargs: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            "system": cached_system(request.system),
            "messages": request.messages,
            "stream": True,
        }
        if request.tools:
            kwargs["tools"] = cached_tools(request.tools)
        try:
            stream = await self.client.messages.create(**kwargs)
            async with stream:
                async for event in stream:
                    if event.type == "message_start":
                        model = event.message.model or model
                        start_usage = event.message.usage
                        usage["input_tokens"] = start_usage.input_tokens or 0
                        usage["output_tokens"] = start_usage.output_tokens or 0
                        usage["cache_read_tokens"] = start_usage.cache_read_input_tokens or 0
                        usage["cache_write_tokens"] = start_usage.cache_creation_input_tokens or 0
                        yield UsageSoFar(TokenUsage(**usage))
                    elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                        tool = {"id": event.content_block.id, "name": event.content_block.name, "json": []}
                    elif event.type == "content_block_delta":
                        if event.delta.type == "text_delta" and event.delta.text:
                            yield TextDelta(event.delta.text)
                        elif event.delta.type == "input_json_delta" and tool is not None:
                            tool["json"].append(event.delta.partial_json)
                    elif event.type == "content_block_stop" and tool is not None:
                        yield ToolUse(tool["id"], tool["name"], parse_tool_input("".join(tool["json"])))
                        tool = None
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason or stop_reason
                        if event.usage and event.usage.output_tokens is not None:
                            usage["output_tokens"] = event.usage.output_tokens
        except anthropic.APIError as exc:
            logger.warning("anthropic call failed: %s", type(exc).__name__)
            raise provider_error(exc, TokenUsage(**usage))
        yield TurnEnd(stop_reason=stop_reason, usage=TokenUsage(**usage), model=model)


def parse_tool_input(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return {"_invalid_json": raw}
    return value if isinstance(value, dict) else {"value": value}
