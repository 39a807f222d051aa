"""Memory entries in admin: operators read and remove them (e.g. on a user's request), across scopes
through the explicit `all_scopes` manager (admin is operator code with no active scope)."""

from __future__ import annotations

from django.contrib import admin

from memory.models import MemoryEntry
from scoping.models import display_scope


@admin.register(MemoryEntry)
class MemoryEntryAdmin(admin.ModelAdmin):
    """Operators may read and remove a scope's memory entries (e.g. on a user's request); the agent and
    the API add them."""

    list_display = ["content", "shown_scope", "created_at"]
    search_fields = ["scope", "content"]
    date_hierarchy = "created_at"
    readonly_fields = ["scope", "content", "created_at"]

    def get_queryset(self, request):
        return MemoryEntry.all_scopes.all()  # operator view across scopes

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="scope", ordering="scope")
    def shown_scope(self, obj: MemoryEntry) -> str:
        return display_scope(obj.scope)
