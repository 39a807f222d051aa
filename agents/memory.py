"""Memory (SPEC §6): per scope, a list of short facts the agent remembers.

Services (add within the budgets, remove, list, search), the `memory` tool (offered when
`memory.enabled`), and the system-prompt section listing the scope's entries at the start of each message.

Budgets (`maxEntries`, `maxTotalChars`) are checked atomically: the entry is inserted, the scope's totals
are counted in the same transaction, and the transaction is rolled back with a clear refusal when they are
exceeded. On PostgreSQL a transaction-scoped advisory lock per scope serialises concurrent adds; SQLite
serialises writers by itself. Search is PostgreSQL full-text search (ranked with ts_rank) there, and a
term-count ranking elsewhere.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Sum
from django.db.models.functions import Length

from agents.agent_folder import AgentFolder, MemoryConfig
from agents.models import MemoryEntry
from core.errors import ApiError, NotFound, ValidationFailed
from core.tools import Tool, ToolContext, ToolResult
from core.validation import check_text, parse_whole_number
from scoping.context import active_scope

TOOL_NAME = "memory"
ACTIONS = ("add", "remove", "list", "search")
TOOL_ARGUMENTS = ("action", "content", "entry_id", "query")
SEARCH_LIMIT = 10
SEARCH_CONFIG = "english"
WORD_RE = re.compile(r"\w+", re.UNICODE)
MAX_ENTRY_ID = 2**63 - 1  # the largest id every database's big integer holds


class MemoryBudgetExceeded(ValidationFailed):
    default_code = "memory_budget_exceeded"


class MemoryEntryNotFound(NotFound):
    default_code = "memory_entry_not_found"

    def __init__(self, entry_id: object) -> None:
        super().__init__(f"No memory entry {entry_id} exists in this scope.")


def memory_invalid(message: str) -> ApiError:
    return ValidationFailed(message)


@dataclass(frozen=True)
class MemoryUsage:
    entries: int
    chars: int
    max_entries: int
    max_total_chars: int

    def describe(self) -> str:
        return (f"{self.entries} of {self.max_entries} entries, "
                f"{self.chars} of {self.max_total_chars} characters used")

    def as_dict(self) -> dict[str, int]:
        return {"count": self.entries, "total_chars": self.chars, "max_entries": self.max_entries,
                "max_total_chars": self.max_total_chars}


@dataclass(frozen=True)
class AddResult:
    entry: MemoryEntry
    created: bool  # False: the same fact was already remembered


def entry_as_dict(entry: MemoryEntry) -> dict[str, Any]:
    return {"id": entry.pk, "content": entry.content, "created_at": entry.created_at.isoformat()}


# --- Services (all in the active scope) ----------------------------------------------------------------


def memory_usage(*, config: MemoryConfig) -> MemoryUsage:
    totals = MemoryEntry.objects.aggregate(entries=Count("id"), chars=Sum(Length("content")))
    return MemoryUsage(totals["entries"], totals["chars"] or 0, config.max_entries, config.max_total_chars)


def add_entry(*, content: Any, config: MemoryConfig) -> AddResult:
    """Remember `content` in the active scope, within the budgets; raises MemoryBudgetExceeded (saying
    what is full and what to do) or a validation error. The same fact twice is remembered once."""
    if not isinstance(content, str) or not content.strip():
        raise memory_invalid("content: must be a non-empty string (the fact to remember).")
    check_text(content, "content")
    content = " ".join(content.split())
    if len(content) > config.max_total_chars:
        raise MemoryBudgetExceeded(
            f"The entry is {len(content)} characters long; memory holds at most {config.max_total_chars} "
            "characters in all. Remember a shorter fact."
        )
    with transaction.atomic():
        _lock_scope_memory()
        existing = MemoryEntry.objects.filter(content__iexact=content).first()
        if existing is not None:
            return AddResult(existing, created=False)
        entry = MemoryEntry.objects.create(content=content)
        usage = memory_usage(config=config)
        if usage.entries > config.max_entries:
            raise MemoryBudgetExceeded(
                f"Memory is full: all {config.max_entries} entries are used. Remove an entry you no longer "
                "need (action remove with its entry_id) before adding another."
            )
        if usage.chars > config.max_total_chars:
            before = usage.chars - len(content)
            raise MemoryBudgetExceeded(
                f"Memory is full: {before} of {config.max_total_chars} characters are used and this entry "
                f"needs {len(content)} more. Remove or shorten entries before adding this one."
            )
    return AddResult(entry, created=True)


def remove_entry(*, entry_id: Any) -> MemoryEntry:
    """Forget one entry of the active scope; another scope's entry is as missing as none."""
    key = parse_entry_id(entry_id)
    entry = MemoryEntry.objects.filter(pk=key).first() if key is not None else None
    if entry is None:
        raise MemoryEntryNotFound(entry_id)
    entry.delete()
    return entry


def list_entries() -> list[MemoryEntry]:
    """The active scope's entries, oldest first."""
    return list(MemoryEntry.objects.order_by("created_at", "id"))


def search_entries(*, query: Any, limit: int = SEARCH_LIMIT) -> list[tuple[MemoryEntry, float]]:
    """The active scope's entries matching any word of `query`, best match first."""
    if not isinstance(query, str) or not query.strip():
        raise memory_invalid("query: must be a non-empty string.")
    check_text(query, "query")
    terms = list(dict.fromkeys(word.lower() for word in WORD_RE.findall(query)))
    if not terms:
        return []
    if connection.vendor == "postgresql":
        return _search_postgres(terms, limit)
    return _search_by_term_count(terms, limit)


def parse_entry_id(value: Any) -> int | None:
    """An entry id (a positive 64-bit integer, from JSON or a URL), or None for anything else."""
    try:
        return parse_whole_number(value, "entry_id", minimum=1, maximum=MAX_ENTRY_ID)
    except ApiError:
        return None


def _lock_scope_memory() -> None:
    """Serialise budget checks of one scope on PostgreSQL (released at the end of the transaction)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["amodal-memory:" + active_scope()])


def _search_postgres(terms: list[str], limit: int) -> list[tuple[MemoryEntry, float]]:
    from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

    query = SearchQuery(terms[0], config=SEARCH_CONFIG)
    for term in terms[1:]:
        query |= SearchQuery(term, config=SEARCH_CONFIG)  # any word matches; the rank orders them
    vector = SearchVector("content", config=SEARCH_CONFIG)
    rows = (
        MemoryEntry.objects.annotate(document=vector, rank=SearchRank(vector, query))
        .filter(document=query)
        .order_by("-rank", "-created_at", "-id")[:limit]
    )
    return [(entry, float(entry.rank)) for entry in rows]


def _search_by_term_count(terms: list[str], limit: int) -> list[tuple[MemoryEntry, float]]:
    """SQLite (and any other database): score = 10 per distinct query word found + its occurrences.

    A word matches a content word that starts with it (so "coffee" finds "coffees"); memory is small
    (maxEntries), so this runs over the scope's entries in Python.
    """
    scored = []
    for entry in MemoryEntry.objects.order_by("-created_at", "-id"):
        words = [word.lower() for word in WORD_RE.findall(entry.content)]
        matched = 0
        occurrences = 0
        for term in terms:
            hits = sum(1 for word in words if word == term or (len(term) >= 3 and word.startswith(term)))
            if hits:
                matched += 1
                occurrences += hits
        if matched:
            scored.append((entry, float(matched * 10 + occurrences)))
    scored.sort(key=lambda pair: -pair[1])  # stable: newest first among equal scores
    return scored[:limit]


# --- The tool -------------------------------------------------------------------------------------------


def memory_tools(agent: AgentFolder) -> list[Tool]:
    if not agent.memory.enabled:
        return []
    config = agent.memory
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
            "entry_id": {"type": "integer", "description": "The entry to forget (remove)."},
            "query": {"type": "string", "description": "Words to look for (search)."},
        },
        "required": ["action"],
        "additionalProperties": False,
    }

    async def run(context: ToolContext, arguments: dict[str, Any]) -> ToolResult:
        unknown = sorted(set(arguments) - set(TOOL_ARGUMENTS))
        if unknown:
            return ToolResult(f"memory has no argument {', '.join(unknown)}: it takes {', '.join(TOOL_ARGUMENTS)} "
                              "and always works on this conversation's own memory.", is_error=True)
        action = arguments.get("action")
        if action not in ACTIONS:
            return ToolResult(f"action must be one of: {', '.join(ACTIONS)}.", is_error=True)

        try:
            return ToolResult(await context.db(run_action, action, arguments, context.agent.memory))
        except ApiError as exc:
            return ToolResult(exc.message, is_error=True)

    return [Tool(TOOL_NAME, description, schema, run)]


def run_action(action: str, arguments: dict[str, Any], config: MemoryConfig) -> str:
    if action == "add":
        result = add_entry(content=arguments.get("content"), config=config)
        usage = memory_usage(config=config)
        if not result.created:
            return f"Already remembered as entry {result.entry.pk}: {result.entry.content}"
        return f"Remembered as entry {result.entry.pk}. Memory: {usage.describe()}."
    if action == "remove":
        if arguments.get("entry_id") is None:
            raise memory_invalid("entry_id: is required to remove an entry (see action list).")
        entry = remove_entry(entry_id=arguments.get("entry_id"))
        return f"Forgot entry {arguments.get('entry_id')}: {entry.content}"
    if action == "search":
        matches = search_entries(query=arguments.get("query"))
        return json.dumps({"query": arguments.get("query"),
                           "entries": [{**entry_as_dict(entry), "rank": round(rank, 4)} for entry, rank in matches]},
                          ensure_ascii=False)
    entries = list_entries()
    return json.dumps({"entries": [entry_as_dict(entry) for entry in entries],
                       **memory_usage(config=config).as_dict()}, ensure_ascii=False)


# --- The prompt section ---------------------------------------------------------------------------------


def memory_prompt_section(agent: AgentFolder) -> str | None:
    """The scope's entries, read at the start of each message (runs inside the session's scope)."""
    if not agent.memory.enabled:
        return None
    entries = list_entries()
    header = "# Memory\n\n"
    if not entries:
        return header + ("Nothing is remembered for this user yet. When they share a lasting fact or preference, "
                         "remember it with the `memory` tool (action add).")
    usage = memory_usage(config=agent.memory)
    lines = [f"- [{entry.pk}] {entry.content}" for entry in entries]
    return header + (
        "What you remember about this user (entry ids in brackets; keep it current with the `memory` tool):\n"
        + "\n".join(lines)
        + f"\n\n({usage.describe()}.)"
    )
