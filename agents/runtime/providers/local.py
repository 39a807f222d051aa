"""The `local` provider: deterministic and offline, so the example agent and the tests need no key.

Commands in the user's message:
- `/say TEXT` answers TEXT, streamed in several deltas;
- `/slow MS TEXT` answers TEXT one word every MS milliseconds (for stop/disconnect demos and tests);
- `/tool NAME {json}` calls tool NAME with exactly those arguments, then summarises the result in a line.
`I approve the action (correlation: ID)` repeats the remembered call ID with intent `confirmed_write`;
`I deny the action (correlation: ID)` declines. Other messages get rule-based answers ("remember X",
"show my preferences", "... transactions ..."). Tests can script whole turns with `scripted_turns`.

Usage is about four characters a token, under the model name `local`.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from agents.runtime.providers.base import (
    ModelRequest,
    ProviderError,
    ProviderEvent,
    TextDelta,
    TokenUsage,
    ToolUse,
    TurnEnd,
)
from agents.runtime.wire import estimate_tokens

MODEL_NAME = "local"
APPROVAL = re.compile(r"^I (approve|deny) the action \(correlation: ([^)\s]+)\)\s*$", re.IGNORECASE)
MAX_SUMMARY_CHARS = 300


@dataclass(frozen=True)
class ScriptedTurn:
    """One scripted model call: text, then tool calls (name, arguments); or an error."""

    text: str = ""
    tool_calls: tuple[tuple[str, dict[str, Any]], ...] = ()
    usage: TokenUsage | None = None
    delay_seconds: float = 0.0
    error: str | None = None


@dataclass
class Script:
    turns: list[ScriptedTurn] = field(default_factory=list)
    requests: list[ModelRequest] = field(default_factory=list)


_script: ContextVar[Script | None] = ContextVar("amodal_local_script", default=None)


@contextmanager
def scripted_turns(*turns: ScriptedTurn) -> Iterator[Script]:
    """Script the next model calls (in this context and tasks started from it)."""
    script = Script(list(turns))
    token = _script.set(script)
    try:
        yield script
    finally:
        _script.reset(token)


def split_for_streaming(text: str, pieces: int = 3) -> list[str]:
    """Split text into a few deltas at word boundaries (one delta when there is one word)."""
    words = re.findall(r"\S+\s*|\s+", text)
    if len(words) <= 1:
        return [text] if text else []
    size = -(-len(words) // pieces)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content if block.get("type") == "text")


def tool_uses_in(messages: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    uses = {}
    for message in messages:
        if message["role"] == "assistant" and isinstance(message["content"], list):
            for block in message["content"]:
                if block.get("type") == "tool_use":
                    uses[block["id"]] = block
    return uses


def last_tool_results(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    last = messages[-1] if messages else None
    if not last or last["role"] != "user" or isinstance(last["content"], str):
        return []
    return [block for block in last["content"] if block.get("type") == "tool_result"]


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    word_delay_seconds: float = 0.0


class LocalProvider:
    name = "local"

    async def stream(self, request: ModelRequest) -> AsyncIterator[ProviderEvent]:
        script = _script.get()
        if script is not None and script.turns:
            script.requests.append(request)
            turn = script.turns.pop(0)
            if turn.delay_seconds:
                await asyncio.sleep(turn.delay_seconds)
            if turn.error:
                raise ProviderError(turn.error, f"Scripted model error: {turn.error}.", turn.usage)
            reply = Reply(turn.text, list(turn.tool_calls))
            usage = turn.usage
        else:
            reply = self.answer(request)
            usage = None
        # Tool ids are unique in the conversation: count the earlier ones without parsing the history.
        earlier_uses = request.history_json.count('"type":"tool_use"') + len(tool_uses_in(request.messages))
        for piece in split_for_streaming(reply.text, pieces=3 if not reply.word_delay_seconds else 10_000):
            if reply.word_delay_seconds:
                await asyncio.sleep(reply.word_delay_seconds)
            yield TextDelta(piece)
        for index, (name, arguments) in enumerate(reply.tool_calls):
            yield ToolUse(f"toolu_local_{earlier_uses + index + 1:04d}", name, arguments)
        if usage is None:
            usage = TokenUsage(
                input_tokens=request.estimated_input_tokens(),
                output_tokens=estimate_tokens(reply.text + json.dumps(reply.tool_calls)),
            )
        yield TurnEnd("tool_use" if reply.tool_calls else "end_turn", usage, MODEL_NAME)

    def answer(self, request: ModelRequest) -> Reply:
        results = last_tool_results(request.messages)
        if results:
            return self.summarise(results, tool_uses_in(request.messages))
        text = block_text(request.messages[-1]["content"]).strip() if request.messages else ""
        tool_names = {tool["name"]: tool for tool in request.tools}
        return (
            command_reply(text, tool_names)
            or approval_reply(text, request)
            or rule_reply(text, tool_names)
            or Reply(
                'I\'m the offline `local` model. Try `/say hello`, `/tool NAME {"arg": 1}`, '
                '"show my recent transactions", "remember that ..." or "show my preferences".'
            )
        )

    @staticmethod
    def summarise(results: list[dict[str, Any]], uses: dict[str, dict[str, Any]]) -> Reply:
        lines = []
        for result in results:
            name = uses.get(result["tool_use_id"], {}).get("name", "the tool")
            content = block_text(result["content"]) if not isinstance(result["content"], str) else result["content"]
            content = " ".join(summarise_content(content).split())
            if len(content) > MAX_SUMMARY_CHARS:
                content = content[:MAX_SUMMARY_CHARS] + "…"
            outcome = "failed" if result.get("is_error") else "returned"
            lines.append(f"{name} {outcome}: {content}")
        return Reply(" ".join(lines))


def summarise_content(content: str) -> str:
    """A JSON result in words (`HTTP 200; 10 transactions: …`); anything else as it is."""
    try:
        value = json.loads(content)
    except (json.JSONDecodeError, TypeError):
        return content
    return summarise_value(value) if isinstance(value, (dict, list)) else content


def summarise_value(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"status", "data"}:
        return f"HTTP {value['status']}; {summarise_value(value['data'])}"
    if isinstance(value, list):
        return summarise_items("items", value)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, list):
                return summarise_items(key, item)
        return ", ".join(f"{key} {scalar_text(item)}" for key, item in list(value.items())[:6])
    return scalar_text(value)


def summarise_items(label: str, items: list[Any]) -> str:
    if not items:
        return f"no {label}"
    shown = "; ".join(describe_item(item) for item in items[:3])
    more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
    return f"{len(items)} {label}: {shown}{more}"


def describe_item(item: Any) -> str:
    if isinstance(item, dict):
        return " ".join(
            str(value) for key, value in item.items() if key != "id" and isinstance(value, (str, int, float))
        )[:100]
    return scalar_text(item)


def scalar_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)[:100]


def command_reply(text: str, tools: dict[str, Any]) -> Reply | None:
    if text.startswith("/say "):
        return Reply(text[len("/say ") :])
    if text.startswith("/slow "):
        _, _, rest = text.partition(" ")
        delay, _, body = rest.partition(" ")
        if delay.isdigit():
            return Reply(body or "…", word_delay_seconds=int(delay) / 1000)
        return Reply("Usage: /slow MILLISECONDS TEXT")
    if text.startswith("/tool "):
        name, _, raw_arguments = text[len("/tool ") :].strip().partition(" ")
        try:
            arguments = json.loads(raw_arguments) if raw_arguments.strip() else {}
        except json.JSONDecodeError as exc:
            return Reply(f"The arguments for /tool {name} are not valid JSON ({exc.msg}).")
        if not isinstance(arguments, dict):
            return Reply(f"The arguments for /tool {name} must be a JSON object.")
        return Reply(tool_calls=[(name, arguments)])
    return None


def approval_reply(text: str, request: ModelRequest) -> Reply | None:
    match = APPROVAL.match(text)
    if not match:
        return None
    verdict, correlation_id = match.group(1).lower(), match.group(2)
    if verdict == "deny":
        return Reply("Understood: I won't do that.")
    use = tool_uses_in(request.all_messages()).get(correlation_id)
    if use is None:
        return Reply(f"I can't find an action with correlation id {correlation_id} in this conversation.")
    return Reply(tool_calls=[(use["name"], {**use["input"], "intent": "confirmed_write"})])


def rule_reply(text: str, tools: dict[str, Any]) -> Reply | None:
    lowered = text.lower()
    if lowered.startswith("remember ") and "memory" in tools:
        fact = text[len("remember ") :].strip()
        fact = re.sub(r"^that\s+", "", fact, flags=re.IGNORECASE)
        return Reply(tool_calls=[("memory", {"action": "add", "content": fact})])
    if "what do you remember" in lowered and "memory" in tools:
        return Reply(tool_calls=[("memory", {"action": "list"})])
    if "preferences" in lowered and "query_store" in tools:
        return Reply(tool_calls=[("query_store", {"store": "preferences"})])
    if "categories" in lowered and "query_store" in tools:
        return Reply(tool_calls=[("query_store", {"store": "categories"})])
    if "transaction" in lowered and "request" in tools:
        connections = tools["request"]["input_schema"]["properties"]["connection"].get("enum") or []
        if connections:
            return Reply(
                "Let me look up your recent transactions.",
                [
                    (
                        "request",
                        {
                            "connection": connections[0],
                            "method": "GET",
                            "endpoint": "/transactions",
                            "params": {"limit": 10},
                            "intent": "read",
                        },
                    )
                ],
            )
    return None
