"""The provider interface: one streamed model call in, text deltas, tool uses and an end out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agents.runtime.wire import CHARS_PER_TOKEN, encode_json

if TYPE_CHECKING:  # records imports this module
    from agents.runtime.records import ModelMessage


@dataclass(frozen=True)
class ModelRequest:
    """One model call. The conversation is `history_json` (earlier messages, already serialised:
    comma-joined JSON objects, no brackets) followed by `messages` (this message's own, in the Messages
    API shape)."""

    model: str
    system: str
    messages: list[ModelMessage]
    tools: list[dict[str, Any]] = field(default_factory=list)
    max_tokens: int = 4096
    history_json: str = ""

    def messages_json(self) -> str:
        """The whole conversation as a JSON array, without re-encoding the history."""
        current = encode_json(self.messages)[1:-1]
        return "[" + ",".join(part for part in (self.history_json, current) if part) + "]"

    def all_messages(self) -> list[ModelMessage]:
        """The whole conversation as objects: parses the history, so only the offline provider uses it."""
        return [*json.loads("[" + self.history_json + "]"), *self.messages]

    def estimated_input_tokens(self) -> int:
        chars = (
            len(self.system) + len(self.history_json) + len(encode_json(self.messages)) + len(encode_json(self.tools))
        )
        return -(-chars // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ToolUse:
    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def counts(self) -> dict[str, int]:
        """The four counts by name, as the usage row, the `usage` event and the price function take them."""
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }


@dataclass(frozen=True)
class UsageSoFar:
    """What the provider knows of the call's usage before it ends (kept if the call is cut off)."""

    usage: TokenUsage


@dataclass(frozen=True)
class TurnEnd:
    stop_reason: str
    usage: TokenUsage
    model: str


ProviderEvent = TextDelta | ToolUse | UsageSoFar | TurnEnd


class ProviderError(Exception):
    """A model call failed for good (after retries). `usage` is what was consumed before it failed."""

    def __init__(self, code: str, message: str, usage: TokenUsage | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.usage = usage or TokenUsage()


class Provider(Protocol):
    name: str

    def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]: ...
