"""What the model can call: tools, the context they run in, and the registry apps add to.

Apps register a *factory* (`register_tool_factory`) that builds tools for an agent folder; the loop asks
`tools_for_agent` once per message.

One rule for the scope: a tool never chooses, enters or reads it from context variables. Its database work
goes through `ToolContext.db`, which runs a sync function in a worker thread inside the session's scope
(`ToolContext.scope_id`), whatever task or thread the tool itself runs in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from core.agent_folder import AgentFolder
    from core.events import ChatEvent


T = TypeVar("T")


class ScopedDb(Protocol):
    """`await db(fn, *args, **kwargs)`: `fn` (sync, ORM) in a worker thread inside one scope, its
    connection given back afterwards (core.db.db_call). scoping.context.scoped_db makes one."""

    async def __call__(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T: ...


@dataclass(frozen=True)
class ToolContext:
    agent: AgentFolder
    scope_id: str
    scope_context: Mapping[str, str]
    session_id: str
    db: ScopedDb = field(compare=False, repr=False)
    shared_write: bool = False
    tool_id: str = ""  # the id of the call being run (set by the loop for each call)


@dataclass(frozen=True)
class ToolResult:
    content: str
    is_error: bool = False
    # Events the stream shows besides tool_call_result (e.g. confirmation_required).
    extra_events: tuple[ChatEvent, ...] = ()


ToolHandler = Callable[[ToolContext, dict[str, Any]], Awaitable[ToolResult]]


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    input_schema: dict[str, Any]
    run: ToolHandler = field(compare=False)

    def as_model_spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "input_schema": self.input_schema}


ToolFactory = Callable[["AgentFolder"], list[Tool]]
PromptSection = Callable[["AgentFolder"], str | None]

MessageHook = Callable[[str, str], None]

_tool_factories: list[ToolFactory] = []
_prompt_sections: list[PromptSection] = []
_message_hooks: list[MessageHook] = []


def register_tool_factory(factory: ToolFactory) -> ToolFactory:
    if factory not in _tool_factories:
        _tool_factories.append(factory)
    return factory


def register_prompt_section(section: PromptSection) -> PromptSection:
    """A section of the system prompt, built (sync, inside the session's scope) at each message."""
    if section not in _prompt_sections:
        _prompt_sections.append(section)
    return section


def register_message_hook(hook: MessageHook) -> MessageHook:
    """Called (sync, inside the session's scope) with (session_id, text) for every user message,
    before the model sees it: e.g. to record that the user approved an action."""
    if hook not in _message_hooks:
        _message_hooks.append(hook)
    return hook


def run_message_hooks(session_id: str, text: str) -> None:
    for hook in _message_hooks:
        hook(session_id, text)


def unknown_arguments(
    tool_name: str, arguments: Mapping[str, Any], allowed: Sequence[str], always: str
) -> ToolResult | None:
    """A tool error naming the arguments the tool does not take (a scope-like one among them), or None.
    `always` says what the tool works on whatever it is given, e.g. "reads this conversation's documents"."""
    unknown = sorted(set(arguments) - set(allowed))
    if not unknown:
        return None
    return ToolResult(
        f"{tool_name} has no argument {', '.join(unknown)}: it takes {', '.join(allowed)} and always {always}.",
        is_error=True,
    )


def tools_for_agent(agent: AgentFolder) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    for factory in _tool_factories:
        for tool in factory(agent):
            if tool.name in tools:
                raise ValueError(f"Two tools are named {tool.name!r}.")
            tools[tool.name] = tool
    return tools


def prompt_sections(agent: AgentFolder) -> list[str]:
    return [text for section in _prompt_sections if (text := section(agent))]
