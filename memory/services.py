"""Writing memory, always in the active scope: add within the budgets, edit, remove.

Budgets (`maxEntries`, `maxTotalChars`) are checked atomically: the scope's totals are counted in the
transaction that writes, and nothing is written when they would be exceeded. On PostgreSQL a
transaction-scoped advisory lock per scope serialises concurrent writers; SQLite serialises them by itself.

An edit or a delete made by an operator (`changed_by`: Studio, or the API with a staff session) is recorded
as a MemoryChange in the same transaction: who, when, and the content before and after.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction

from core.public_ids import parse_public_id
from core.validation import check_text
from memory.config import MemoryConfig
from memory.errors import MemoryBudgetExceeded, MemoryEntryNotFound, memory_invalid
from memory.models import MemoryChange, MemoryEntry
from memory.selectors import memory_usage
from scoping.context import active_scope


@dataclass(frozen=True)
class AddResult:
    entry: MemoryEntry
    created: bool  # False: the same fact was already remembered


@dataclass(frozen=True)
class EditResult:
    entry: MemoryEntry
    changed: bool  # False: the new content was the same as the old (nothing written, nothing recorded)


def clean_content(content: Any, config: MemoryConfig) -> str:
    """The content as stored (whitespace runs become one space), or a validation error saying why not."""
    if not isinstance(content, str) or not content.strip():
        raise memory_invalid("content: must be a non-empty string (the fact to remember).")
    check_text(content, "content")
    content = " ".join(content.split())
    if len(content) > config.max_total_chars:
        raise MemoryBudgetExceeded(
            f"The entry is {len(content)} characters long; memory holds at most {config.max_total_chars} "
            "characters in all. Remember a shorter fact."
        )
    return content


def add_entry(*, content: Any, config: MemoryConfig) -> AddResult:
    """Remember `content` in the active scope, within the budgets; raises MemoryBudgetExceeded (saying
    what is full and what to do) or a validation error. The same fact twice is remembered once."""
    content = clean_content(content, config)
    with transaction.atomic():
        _lock_scope_memory()
        existing = MemoryEntry.objects.filter(content__iexact=content).first()
        if existing is not None:
            return AddResult(existing, created=False)
        usage = memory_usage(config=config)
        if usage.entries + 1 > config.max_entries:
            raise MemoryBudgetExceeded(
                f"Memory is full: all {config.max_entries} entries are used. Remove an entry you no longer "
                "need (action remove with its entry_id) before adding another."
            )
        if usage.chars + len(content) > config.max_total_chars:
            raise MemoryBudgetExceeded(
                f"Memory is full: {usage.chars} of {config.max_total_chars} characters are used and this entry "
                f"needs {len(content)} more. Remove or shorten entries before adding this one."
            )
        entry = MemoryEntry.objects.create(content=content)
    return AddResult(entry, created=True)


def edit_entry(*, entry_id: Any, content: Any, config: MemoryConfig, changed_by: User | None = None) -> EditResult:
    """Replace an entry's content, with the checks of `add_entry`: the same validation, no second entry
    with the same fact, and the character budget (an edit that shortens the entry is always allowed: it
    only frees room). Recorded as a MemoryChange when `changed_by` is given."""
    content = clean_content(content, config)
    with transaction.atomic():
        _lock_scope_memory()
        entry = _entry_for_update(entry_id)
        before = entry.content
        if content == before:
            return EditResult(entry, changed=False)
        if MemoryEntry.objects.filter(content__iexact=content).exclude(pk=entry.pk).exists():
            raise memory_invalid("content: another entry of this scope already remembers exactly this.")
        total = memory_usage(config=config).chars - len(before) + len(content)
        if total > config.max_total_chars and len(content) > len(before):
            raise MemoryBudgetExceeded(
                f"Memory would hold {total} of at most {config.max_total_chars} characters: shorten this entry "
                f"by at least {total - config.max_total_chars} characters, or remove other entries first."
            )
        entry.content = content
        entry.save(update_fields=["content"])
        _record_change(entry, MemoryChange.Action.EDITED, before=before, after=content, changed_by=changed_by)
    return EditResult(entry, changed=True)


def remove_entry(*, entry_id: Any, changed_by: User | None = None) -> MemoryEntry:
    """Forget one entry of the active scope (by its public id); another scope's entry is as missing as
    none. Recorded as a MemoryChange when `changed_by` is given."""
    with transaction.atomic():
        entry = _entry_for_update(entry_id)
        deleted, _ = MemoryEntry.objects.filter(pk=entry.pk).delete()
        if not deleted:  # removed by someone else between the read and the delete
            raise MemoryEntryNotFound(entry_id)
        _record_change(entry, MemoryChange.Action.DELETED, before=entry.content, after="", changed_by=changed_by)
    return entry


def _entry_for_update(entry_id: Any) -> MemoryEntry:
    """The active scope's entry with this public id, locked until the transaction ends (PostgreSQL)."""
    key = parse_public_id(entry_id)
    entry = MemoryEntry.objects.select_for_update().filter(public_id=key).first() if key is not None else None
    if entry is None:
        raise MemoryEntryNotFound(entry_id)
    return entry


def _record_change(entry: MemoryEntry, action: str, *, before: str, after: str, changed_by: User | None) -> None:
    if changed_by is None:
        return
    MemoryChange.objects.create(
        entry_id=entry.public_id,
        action=action,
        content_before=before,
        content_after=after,
        actor=changed_by,
        actor_name=changed_by.get_username(),
    )


def _lock_scope_memory() -> None:
    """Serialise budget checks of one scope on PostgreSQL (released at the end of the transaction)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["amodal-memory:" + active_scope()])
