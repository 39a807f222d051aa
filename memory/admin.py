"""Memory in admin, read-only: the entries and the record of operators' changes, across scopes through the
explicit `all_scopes` manager (admin is operator code with no active scope).

Entries are edited and deleted in Studio (the scope's memory page), not here: that is the one operator path,
and it goes through memory.services like the agent's own writes (validation, budgets) and records each
change with who and when in the same transaction. An admin form or its bulk "delete selected" would be a
second path that had to repeat all of that, so admin only reads, and links each entry to Studio.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from core.admin import ReadOnlyAdmin
from memory.models import MemoryChange, MemoryEntry
from scoping.models import display_scope
from scoping.permissions import VIEW_STUDIO


@admin.register(MemoryEntry)
class MemoryEntryAdmin(ReadOnlyAdmin):
    list_display = ["content", "shown_scope", "created_at", "in_studio"]
    search_fields = ["scope", "content", "=public_id"]
    date_hierarchy = "created_at"
    fields = ("public_id", "scope", "content", "created_at", "in_studio")
    readonly_fields = fields

    def get_queryset(self, request):
        return MemoryEntry.all_scopes.all()  # operator view across scopes

    def get_list_display(self, request: HttpRequest):
        return without_studio_link(super().get_list_display(request), request)

    def get_fields(self, request: HttpRequest, obj=None):
        return without_studio_link(super().get_fields(request, obj), request)

    @admin.display(description="scope", ordering="scope")
    def shown_scope(self, obj: MemoryEntry) -> str:
        return display_scope(obj.scope)

    @admin.display(description="edit or delete")
    def in_studio(self, obj: MemoryEntry) -> str:
        url = reverse("studio:scope_memory") + "?" + urlencode({"scope": obj.scope})
        return format_html('<a href="{}">In Studio</a>', url)


def without_studio_link(names, request: HttpRequest) -> list[str]:
    """The Studio link only for those who may open Studio (the others would land on its 403 page)."""
    return list(names) if request.user.has_perm(VIEW_STUDIO) else [name for name in names if name != "in_studio"]


@admin.register(MemoryChange)
class MemoryChangeAdmin(ReadOnlyAdmin):
    list_display = ["at", "action", "shown_scope", "entry_id", "actor_name"]
    list_filter = ["action"]
    search_fields = ["scope", "=entry_id", "actor_name", "content_before", "content_after"]
    date_hierarchy = "at"
    fields = ("at", "action", "scope", "entry_id", "actor", "actor_name", "content_before", "content_after")
    readonly_fields = fields

    def get_queryset(self, request):
        return MemoryChange.all_scopes.select_related("actor")  # operator view across scopes

    @admin.display(description="scope", ordering="scope")
    def shown_scope(self, obj: MemoryChange) -> str:
        return display_scope(obj.scope)
