"""The scopes list and what one scope holds: sessions, memory entries, store documents, credential keys.

Memory entries and store documents are looked up with `optional_model`, so their pages degrade to a notice
(instead of an import error) on a checkout where those models do not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Model, Q, Sum
from django.db.models.functions import Length

from agents.models import Session
from connections.models import ScopedCredential
from scoping.models import Scope
from studio.filters import decode_cursor, encode_cursor, parse_moment
from studio.model_access import every_scope, optional_model
from studio.selectors.labels import ScopeLabels, scope_search
from studio.selectors.sessions import SESSION_LIST_FIELDS

SCOPE_PAGE_SIZE = 50
MEMORY_PAGE_SIZE = 100
MEMORY_CHANGES_SHOWN = 20
DOCUMENT_PAGE_SIZE = 50
DOCUMENT_VERSIONS_SHOWN = 50
RECENT_SESSIONS = 10


@dataclass(frozen=True)
class ScopeRow:
    """A scope as the list shows it: when it was seen, and what its sessions hold."""

    scope_id: str
    label: str
    first_seen_at: datetime
    last_seen_at: datetime
    sessions: int
    cost: int
    unpriced: int
    tokens: int


@dataclass
class ScopePage:
    scopes: list[ScopeRow]
    total: int
    older: str | None
    at_start: bool

    @property
    def labels(self) -> ScopeLabels:
        """The labels of the listed scopes, read with them."""
        return ScopeLabels({row.scope_id: row.label for row in self.scopes if row.label})


def scope_page(*, search: str = "", after: str | None = None, size: int = SCOPE_PAGE_SIZE) -> ScopePage:
    """Scopes by latest activity (or those whose id or label contains `search`), keyset-paginated on
    (last_seen_at, id); each with its label, number of sessions, tokens and cost (one grouped query over
    the page's scopes). Three queries."""
    queryset = Scope.objects.all()
    if search:
        queryset = queryset.filter(scope_search(search))
    total = queryset.count()
    values = decode_cursor(after, 2)
    moment = parse_moment(values[0]) if values else None
    if values is not None and moment is not None and values[1].isdigit():
        queryset = queryset.filter(Q(last_seen_at__lt=moment) | Q(last_seen_at=moment, id__lt=int(values[1])))
    found = list(queryset.order_by("-last_seen_at", "-id")[: size + 1])
    more = len(found) > size
    found = found[:size]
    stats: dict[str, dict[str, Any]] = {
        row["scope"]: dict(row)
        for row in Session.all_scopes.filter(scope__in=[s.scope_id for s in found])
        .order_by()
        .values("scope")
        .annotate(
            sessions=Count("pk"),
            cost=Sum("cost_micros"),
            unpriced=Sum("unpriced_calls"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
        )
    }
    rows = [scope_row(scope, stats.get(scope.scope_id, {})) for scope in found]
    return ScopePage(
        rows,
        total,
        older=encode_cursor(found[-1].last_seen_at, found[-1].pk) if found and more else None,
        at_start=moment is None,
    )


def scope_row(scope: Scope, stat: dict[str, Any]) -> ScopeRow:
    return ScopeRow(
        scope.scope_id,
        scope.label,
        scope.first_seen_at,
        scope.last_seen_at,
        sessions=stat.get("sessions", 0),
        cost=stat.get("cost") or 0,
        unpriced=stat.get("unpriced") or 0,
        tokens=(stat.get("input_tokens") or 0) + (stat.get("output_tokens") or 0),
    )


@dataclass
class ScopeOverview:
    scope_id: str
    scope: Scope | None
    sessions: dict[str, Any]
    recent_sessions: list[Session]
    memory_entries: int | None  # None: memory is not available in this build
    store_documents: list[dict[str, Any]] | None
    credential_keys: list[str]


def scope_overview(scope_id: str) -> ScopeOverview:
    """What one scope holds: sessions (totals and the latest), memory, store documents, credential keys
    (names only: values are never read). About six queries."""
    sessions = Session.all_scopes.filter(scope=scope_id)
    totals = sessions.order_by().aggregate(
        count=Count("pk"),
        cost=Sum("cost_micros"),
        unpriced=Sum("unpriced_calls"),
        input_tokens=Sum("input_tokens"),
        output_tokens=Sum("output_tokens"),
        last_active=Max("updated_at"),
        messages=Sum("message_count"),
    )
    recent = list(sessions.only(*SESSION_LIST_FIELDS).order_by("-updated_at", "-id")[:RECENT_SESSIONS])
    memory = optional_model("memory", "MemoryEntry")
    return ScopeOverview(
        scope_id=scope_id,
        scope=Scope.objects.filter(scope_id=scope_id).first(),
        sessions=totals,
        recent_sessions=recent,
        memory_entries=every_scope(memory).filter(scope=scope_id).count() if memory else None,
        store_documents=document_stores(scope_id),
        credential_keys=list(
            ScopedCredential.all_scopes.filter(scope=scope_id).order_by("key").values_list("key", flat=True)
        ),
    )


@dataclass
class RowPage:
    rows: list[Any]
    total: int
    older: str | None
    at_start: bool
    available: bool = True


def _pk_value(model: type[Model], raw: str) -> Any:
    try:
        return model._meta.pk.to_python(raw)
    except Exception:  # noqa: BLE001  (not a key of this model: treat as no cursor)
        return None


@dataclass
class MemoryPage(RowPage):
    """A page of a scope's memory entries, with the scope's totals and its latest recorded changes."""

    chars: int = 0
    changes: list[Any] = field(default_factory=list)


def memory_page(scope_id: str, *, after: str | None = None, size: int = MEMORY_PAGE_SIZE) -> MemoryPage:
    """A scope's memory entries, newest first, keyset-paginated on (created_at, pk); the scope's entry
    count and characters; its latest operator changes. Three queries."""
    model = optional_model("memory", "MemoryEntry")
    if model is None:
        return MemoryPage([], 0, None, True, available=False)
    queryset = every_scope(model).filter(scope=scope_id)
    totals = memory_totals(scope_id)
    values = decode_cursor(after, 2)
    moment = parse_moment(values[0]) if values else None
    key = _pk_value(model, values[1]) if values else None
    if moment is not None and key is not None:
        queryset = queryset.filter(Q(created_at__lt=moment) | Q(created_at=moment, pk__lt=key))
    rows = list(queryset.order_by("-created_at", "-pk")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return MemoryPage(
        rows,
        totals.entries,
        encode_cursor(rows[-1].created_at, rows[-1].pk) if rows and more else None,
        at_start=moment is None,
        chars=totals.chars,
        changes=memory_changes(scope_id),
    )


@dataclass(frozen=True)
class MemoryTotals:
    entries: int
    chars: int


def memory_totals(scope_id: str) -> MemoryTotals:
    """How many entries a scope holds and their characters (what the budgets count). One query."""
    model = optional_model("memory", "MemoryEntry")
    if model is None:
        return MemoryTotals(0, 0)
    totals = every_scope(model).filter(scope=scope_id).aggregate(entries=Count("pk"), chars=Sum(Length("content")))
    return MemoryTotals(totals["entries"], totals["chars"] or 0)


def memory_entry(scope_id: str, public_id: uuid.UUID) -> Any | None:
    """The entry with this public id in this scope; None when it is missing or another scope's."""
    model = optional_model("memory", "MemoryEntry")
    if model is None:
        return None
    return every_scope(model).filter(scope=scope_id, public_id=public_id).first()


def memory_changes(scope_id: str, *, limit: int = MEMORY_CHANGES_SHOWN) -> list[Any]:
    """The scope's latest recorded memory changes (operators' edits and deletes), newest first."""
    model = optional_model("memory", "MemoryChange")
    if model is None:
        return []
    return list(every_scope(model).filter(scope=scope_id).order_by("-at", "-pk")[:limit])


def document_stores(scope_id: str) -> list[dict[str, Any]] | None:
    model = optional_model("stores", "StoreDocument")
    if model is None:
        return None
    return list(
        every_scope(model)
        .filter(scope=scope_id)
        .order_by("store")
        .values("store")
        .annotate(documents=Count("pk"), last_update=Max("updated_at"))
    )


def document_page(
    scope_id: str, *, store: str = "", after: str | None = None, size: int = DOCUMENT_PAGE_SIZE
) -> RowPage:
    """A scope's store documents (one store or all), by store then key, keyset-paginated on
    (store, key), which is unique within a scope. Two queries."""
    model = optional_model("stores", "StoreDocument")
    if model is None:
        return RowPage([], 0, None, True, available=False)
    queryset = every_scope(model).filter(scope=scope_id)
    if store:
        queryset = queryset.filter(store=store)
    total = queryset.count()
    values = decode_cursor(after, 2)
    if values:
        queryset = queryset.filter(Q(store__gt=values[0]) | Q(store=values[0], key__gt=values[1]))
    rows = list(queryset.order_by("store", "key")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return RowPage(
        rows, total, encode_cursor(rows[-1].store, rows[-1].key) if rows and more else None, at_start=values is None
    )


@dataclass
class DocumentDetail:
    document: Any
    versions: list[Any]
    version_count: int


def document_detail(pk: Any) -> DocumentDetail | None:
    """One store document and its kept previous versions, newest first (three queries)."""
    model = optional_model("stores", "StoreDocument")
    if model is None:
        return None
    key = _pk_value(model, str(pk))
    if key is None:
        return None
    document = every_scope(model).filter(pk=key).first()
    if document is None:
        return None
    version_model = optional_model("stores", "StoreDocumentVersion")
    versions: list[Any] = []
    count = 0
    if version_model is not None:
        queryset = every_scope(version_model).filter(document=document, scope=document.scope)
        count = queryset.count()
        versions = list(queryset.order_by("-version")[:DOCUMENT_VERSIONS_SHOWN])
    return DocumentDetail(document, versions, count)
