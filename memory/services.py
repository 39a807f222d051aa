"""Writing memory, always in the active scope: add within the budgets, remove.

Budgets (`maxEntries`, `maxTotalChars`) are checked atomically: the entry is inserted, the scope's totals
are counted in the same transaction, and the transaction is rolled back with a clear refusal when they are
exceeded. On PostgreSQL a transaction-scoped advisory lock per scope serialises concurrent adds; SQLite
serialises writers by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from core.errors import ApiError
from core.validation import check_text, parse_whole_number
from memory.config import MemoryConfig
from memory.errors import MemoryBudgetExceeded, MemoryEntryNotFound, memory_invalid
from memory.models import MemoryEntry
from memory.selectors import memory_usage
from scoping.context import active_scope

MAX_ENTRY_ID = 2**63 - 1  # the largest id every database's big integer holds


@dataclass(frozen=True)
class AddResult:
    entry: MemoryEntry
    created: bool  # False: the same fact was already remembered


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
