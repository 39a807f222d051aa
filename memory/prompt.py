"""Memory's section of the system prompt: the scope's entries, with their ids, at every message."""

from __future__ import annotations

from core.agent_folder import AgentFolder
from memory.config import memory_config_of
from memory.selectors import list_entries, memory_usage


def memory_prompt_section(agent: AgentFolder) -> str | None:
    """The scope's entries, read at the start of each message (runs inside the session's scope)."""
    config = memory_config_of(agent)
    if not config.enabled:
        return None
    entries = list_entries()
    header = "# Memory\n\n"
    if not entries:
        return header + (
            "Nothing is remembered for this user yet. When they share a lasting fact or preference, "
            "remember it with the `memory` tool (action add)."
        )
    usage = memory_usage(config=config)
    lines = [f"- [{entry.public_id}] {entry.content}" for entry in entries]
    return header + (
        "What you remember about this user (entry ids in brackets; keep it current with the `memory` tool):\n"
        + "\n".join(lines)
        + f"\n\n({usage.describe()}.)"
    )
