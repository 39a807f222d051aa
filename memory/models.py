"""MemoryEntry: one short fact the agent remembers for a scope.

The table keeps its first name, `agents_memoryentry` (the model moved here from `agents` without touching
the data: see migrations/0001_initial.py).
"""

from __future__ import annotations

from django.db import models

from scoping.models import ScopedModel


class MemoryEntry(ScopedModel):
    """One short fact the agent remembers for a scope (SPEC §6); shown in the system prompt of every
    message of that scope. Budgets (maxEntries, maxTotalChars) are enforced by memory.services."""

    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "agents_memoryentry"
        verbose_name_plural = "memory entries"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["scope", "created_at"], name="memoryentry_scope_created")]

    def __str__(self) -> str:
        return self.content[:80]
