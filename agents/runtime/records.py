"""The typed records that cross the runtime's boundaries: from the loop to the recorder (a tool call, the
usage of a message) and from saved rows to the model (the Messages API shapes). Dicts appear only at the
edges, where a record becomes JSON: `ToolCallRecord.saved()` for the database and the API,
`UsageTotals.as_dict()` for the `done` event and `/chat/sync`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from agents.runtime.providers.base import TokenUsage, ToolUse
from core.events import MessageUsage, ToolStatus, cap, redact

# --- The Messages API shapes ---------------------------------------------------------------------


class TextBlock(TypedDict):
    type: Literal["text"]
    text: str


class ToolUseBlock(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(TypedDict):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str
    is_error: bool


ContentBlock = TextBlock | ToolUseBlock | ToolResultBlock


class ModelMessage(TypedDict):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]  # a new user message is sent as plain text


def text_block(text: str) -> TextBlock:
    return {"type": "text", "text": text}


def tool_use_block(tool_id: str, name: str, arguments: dict[str, Any]) -> ToolUseBlock:
    return {"type": "tool_use", "id": tool_id, "name": name, "input": arguments}


# --- Tool calls -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallRecord:
    """One tool call as it ran. `output` is what history and replay show (capped); `model_content`, the
    whole result the model was given, is never saved."""

    tool_id: str
    tool_name: str
    parameters: dict[str, Any]  # redacted
    status: ToolStatus
    output: str
    duration_ms: int
    model_content: str | None = None

    @classmethod
    def finished(cls, use: ToolUse, *, content: str, is_error: bool, duration_ms: int) -> ToolCallRecord:
        return cls(
            use.id, use.name, redact(use.input), "error" if is_error else "success", cap(content), duration_ms, content
        )

    @classmethod
    def cut_off(cls, use: ToolUse) -> ToolCallRecord:
        return cls(use.id, use.name, redact(use.input), "error", "Cancelled before it finished.", 0)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> ToolCallRecord:
        status: ToolStatus = "error" if saved.get("status") == "error" else "success"
        output = saved.get("error" if status == "error" else "result", "")
        return cls(
            str(saved.get("tool_id", "")),
            str(saved.get("tool_name", "")),
            saved.get("parameters") or {},
            status,
            str(output),
            int(saved.get("duration_ms") or 0),
        )

    @property
    def is_error(self) -> bool:
        return self.status == "error"

    def saved(self) -> dict[str, Any]:
        """The JSON kept in Message.tool_calls and answered by the API: `result` or `error`, never both."""
        return {
            "tool_id": self.tool_id,
            "tool_name": self.tool_name,
            "parameters": self.parameters,
            "status": self.status,
            "error" if self.is_error else "result": self.output,
            "duration_ms": self.duration_ms,
        }

    def use_block(self) -> ToolUseBlock:
        return tool_use_block(self.tool_id, self.tool_name, self.parameters)

    def result_block(self, *, whole: bool = True) -> ToolResultBlock:
        """The result as the model gets it: whole in the message that ran it, as saved (capped) after."""
        content = self.model_content if whole and self.model_content is not None else self.output
        return {"type": "tool_result", "tool_use_id": self.tool_id, "content": content, "is_error": self.is_error}


# --- Usage ----------------------------------------------------------------------------------------


@dataclass
class UsageTotals:
    """The usage of a message, summed over its model calls. `cost_micros` is None as soon as one call
    has no price: an unknown cost is never shown as a smaller known one."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_micros: int | None = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, usage: TokenUsage, cost_micros: int | None) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.cache_read_tokens += usage.cache_read_tokens
        self.cache_write_tokens += usage.cache_write_tokens
        self.cost_micros = None if cost_micros is None or self.cost_micros is None else self.cost_micros + cost_micros

    def as_dict(self) -> MessageUsage:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "total_tokens": self.total_tokens,
            "cost_micros": self.cost_micros,
        }
