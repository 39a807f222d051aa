"""The `memory` tool (offered when amodal.json has `memory.enabled`): add, remove, list, search.

It works on the session's scope only: its database work goes through `ToolContext.db`, which runs it in
that scope; no argument can name another. The agent's settings come from the factory's argument, read
through `memory_config_of` (memory.config), so memory needs nothing from the app that parses the agent
folder's manifest.
"""

from __future__ import annotations

import json
from typing import Any

from core.agent_folder import AgentFolder
from core.errors import ApiError
from core.tools import Tool, ToolContext, ToolResult, unknown_arguments
from memory.config import MemoryConfig, memory_config_of
from memory.errors import memory_invalid
from memory.selectors import entry_as_dict, list_entries, memory_usage, search_entries
from memory.services import add_entry, remove_entry

TOOL_NAME = "memory"
ACTIONS = ("add", "remove", "list", "search")
TOOL_ARGUMENTS = ("action", "content", "entry_id", "query")


def memory_tools(agent: AgentFolder) -> list[Tool]:
    config = memory_config_of(agent)
    if not config.enabled:
        return []
    description = (
        "Remember short, lasting facts about this user or household across conversations. "
        "action add (content) remembers a fact; remove (entry_id) forgets one; list shows them all; "
        f"search (query) finds the best matches. Budget: {config.max_entries} entries, "
        f"{config.max_total_chars} characters in all."
    )
    schema = {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": list(ACTIONS)},
            "content": {"type": "string", "description": "The fact to remember (add)."},
            "entry_id": {"type": "string", "description": "The id of the entry to forget (remove), as listed."},
            "query": {"type": "string", "description": "Words to look for (search)."},
        },
        "required": ["action"],
        "additionalProperties": False,
    }

    async def run(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        refused = unknown_arguments(TOOL_NAME, arguments, TOOL_ARGUMENTS, "works on this conversation's own memory")
        if refused is not None:
            return refused
        action = arguments.get("action")
        if action not in ACTIONS:
            return ToolResult(f"action must be one of: {', '.join(ACTIONS)}.", is_error=True)

        try:
            return ToolResult(await context.db(run_action, action, arguments, config))
        except ApiError as exc:
            return ToolResult(exc.message, is_error=True)

    return [Tool(TOOL_NAME, description, schema, run)]


def run_action(action: str, arguments: dict[str, Any], config: MemoryConfig) -> str:
    if action == "add":
        result = add_entry(content=arguments.get("content"), config=config)
        usage = memory_usage(config=config)
        if not result.created:
            return f"Already remembered as entry {result.entry.public_id}: {result.entry.content}"
        return f"Remembered as entry {result.entry.public_id}. Memory: {usage.describe()}."
    if action == "remove":
        if arguments.get("entry_id") is None:
            raise memory_invalid("entry_id: is required to remove an entry (see action list).")
        entry = remove_entry(entry_id=arguments.get("entry_id"))
        return f"Forgot entry {entry.public_id}: {entry.content}"
    if action == "search":
        matches = search_entries(query=arguments.get("query"))
        return json.dumps(
            {
                "query": arguments.get("query"),
                "entries": [{**entry_as_dict(entry), "rank": round(rank, 4)} for entry, rank in matches],
            },
            ensure_ascii=False,
        )
    entries = list_entries()
    return json.dumps(
        {"entries": [entry_as_dict(entry) for entry in entries], **memory_usage(config=config).as_dict()},
        ensure_ascii=False,
    )
