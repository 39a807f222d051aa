"""MemoryEntry: one short fact the agent remembers for a scope; MemoryChange: an operator's edit or delete.

MemoryEntry's table keeps its first name, `agents_memoryentry` (the model moved here from `agents` without
touching the data: see migrations/0001_initial.py).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from scoping.models import ScopedModel


class MemoryEntry(ScopedModel):
    """One short fact the agent remembers for a scope (SPEC §6); shown in the system prompt of every
    message of that scope. Budgets (maxEntries, maxTotalChars) are enforced by memory.services.

    Outside this app an entry is known by `public_id`, a random UUID: the integer primary key is a global
    counter, whose next value would tell one scope how many entries every other scope writes."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "agents_memoryentry"
        verbose_name_plural = "memory entries"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["scope", "created_at"], name="memoryentry_scope_created")]

    def __str__(self) -> str:
        return self.content[:80]


class MemoryChange(ScopedModel):
    """An operator's edit or delete of a memory entry (Studio, or the API with a staff session): who, when,
    which entry, and its content before and after. Written in the transaction of the change itself, so
    there is no change without its record. It holds the scope's data (the content), so it is scoped like
    the entries and leaves with them when a scope is erased."""

    class Action(models.TextChoices):
        EDITED = "edited"
        DELETED = "deleted"

    entry_id = models.UUIDField(help_text="The entry's public id (it may have been deleted since).")
    action = models.CharField(max_length=16, choices=Action.choices)
    content_before = models.TextField()
    content_after = models.TextField(blank=True, help_text="Empty for a delete.")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    actor_name = models.CharField(max_length=150, help_text="The username at the time (kept if the user goes).")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["scope", "-at", "-id"], name="memorychange_scope_at")]

    def __str__(self) -> str:
        return f"{self.action} {self.entry_id} by {self.actor_name} at {self.at:%Y-%m-%d %H:%M}"
