"""The memory app's kinds of a scope's data (scoping.scope_data): its entries, and operators' edits of them."""

from __future__ import annotations

from memory.models import MemoryChange, MemoryEntry
from scoping.scope_data import ScopeDataKind, model_rows

MEMORY = ScopeDataKind(
    "memory",
    MemoryEntry,
    model_rows(MemoryEntry, [("id", "public_id"), "content", "created_at"], order_by=["created_at", "id"]),
)
MEMORY_CHANGE = ScopeDataKind(
    "memory_change",
    MemoryChange,
    model_rows(
        MemoryChange,
        ["entry_id", "action", "content_before", "content_after", "actor_name", "at"],
        order_by=["at", "id"],
    ),
)

KINDS = (MEMORY, MEMORY_CHANGE)
