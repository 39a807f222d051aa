"""The provider interface: one streamed model call in, text deltas, tool uses and an end out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # records imports this module
    from agents.runtime.records import ModelMessage


@dataclass(frozen=True)
class ModelRequest:
    model: str
    system: str
    messages: list[ModelMessage]  # the Messages API shape: role + content (string or blocks)
    tools: list[dict[str, Any]] = field(default_factory=list)
    max_tokens: int = 4096


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
