"""The system prompt: who the agent is, its knowledge, its tools, and per-message sections
(memory, stores) that apps register with `register_prompt_section`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.agent_folder import knowledge_of, manifest_of
from core.tools import Tool

if TYPE_CHECKING:
    from core.agent_folder import AgentFolder


def build_system_prompt(agent: AgentFolder, tools: dict[str, Tool], sections: list[str]) -> str:
    manifest, knowledge = manifest_of(agent), knowledge_of(agent)
    parts = [manifest.base_prompt or manifest.description or f"You are {manifest.name}, a helpful assistant."]
    if knowledge:
        parts.append("# Knowledge")
        parts.extend(f"## {doc.name}\n\n{doc.text.strip()}" for doc in knowledge)
    if tools:
        lines = [f"- `{tool.name}`: {tool.description.splitlines()[0]}" for tool in tools.values()]
        parts.append("# Tools\n\nYou can call these tools:\n" + "\n".join(lines))
    parts.extend(sections)
    return "\n\n".join(parts)
