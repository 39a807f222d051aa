"""Reads of stores: one document by key, a filtered and sorted page, counts per store.

Reads happen in the active scope; a shared store is read from the global partition, from any scope.
Expired documents (past their TTL, not yet purged) are hidden from lists and counts; a direct get still
returns one, marked stale.

Filters are field equality. On PostgreSQL they become one containment test, `data @> '{"f": v}'`, which
the GIN index (jsonb_path_ops) answers; elsewhere they are JSON key lookups over the (scope, store, ...)
index. Sorting compares numbers as numbers and datetimes as instants on both databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import DataError, connection, transaction
from django.db.models import Count, DateTimeField, F, FloatField, Func, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast
from django.utils import timezone

from core.validation import check_json_text, parse_whole_number
from scoping.context import GLOBAL_SCOPE, scope
from stores.definitions import StoreDefinition
from stores.documents import check_value, normalise_value
from stores.errors import QueryInvalid
from stores.models import StoreDocument, StoreDocumentVersion
from stores.services import store_partition

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 1_000_000_000  # far past any store's size, and within every database's integer range
FILTERABLE_TYPES = ("string", "number", "boolean", "datetime", "enum")
SORTABLE_TYPES = FILTERABLE_TYPES


@dataclass(frozen=True)
class DocumentView:
    store: str
    key: str
    data: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    stale: bool  # past its TTL: hidden from lists, waiting for the purge

    @classmethod
    def of(cls, document: StoreDocument, now: datetime) -> DocumentView:
        return cls(
            store=document.store,
            key=document.key,
            data=document.data,
            version=document.version,
            created_at=document.created_at,
            updated_at=document.updated_at,
            expires_at=document.expires_at,
            stale=is_expired(document, now),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "data": self.data,
            "version": self.version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "stale": self.stale,
        }


@dataclass(frozen=True)
class DocumentPage:
    documents: list[DocumentView]
    limit: int
    offset: int
    has_more: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": [document.as_dict() for document in self.documents],
            "limit": self.limit,
            "offset": self.offset,
            "has_more": self.has_more,
        }


def is_expired(document: StoreDocument, now: datetime) -> bool:
    return document.expires_at is not None and document.expires_at <= now


def live(now: datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


# --- One document ------------------------------------------------------------------------------------


def get_document(*, definition: StoreDefinition, key: str) -> DocumentView | None:
    """The document with this key in the store's partition (stale when expired), or None."""
    with store_partition(definition):
        document = StoreDocument.objects.filter(store=definition.name, key=key).first()
    return None if document is None else DocumentView.of(document, timezone.now())


def get_document_row(*, definition: StoreDefinition, key: str) -> StoreDocument | None:
    with store_partition(definition):
        return StoreDocument.objects.filter(store=definition.name, key=key).first()


def document_versions(*, document: StoreDocument) -> list[StoreDocumentVersion]:
    """The kept previous versions of a document, newest first (in the document's own partition)."""
    with scope(document.scope):
        return list(StoreDocumentVersion.objects.filter(document=document).order_by("-version"))


# --- Pages ---------------------------------------------------------------------------------------------


def parse_page_bounds(limit: Any, offset: Any, *, default_limit: int = DEFAULT_LIMIT) -> tuple[int, int]:
    """limit 1..100 and offset 0..MAX_OFFSET, from JSON numbers or query-string text (ASCII digits);
    raises a 400 validation_error naming the parameter."""
    limit = default_limit if limit in (None, "") else parse_whole_number(limit, "limit", minimum=1, maximum=MAX_LIMIT)
    offset = 0 if offset in (None, "") else parse_whole_number(offset, "offset", minimum=0, maximum=MAX_OFFSET)
    return limit, offset


def query_documents(
    *,
    definition: StoreDefinition,
    filters: Any = None,
    sort: Any = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
) -> DocumentPage:
    """A page of the store's live documents: field-equality `filters`, `sort` by `field` or `-field`
    (default: by key), `limit` 1..100, `offset`. Raises QueryInvalid naming the offending field."""
    limit, offset = parse_page_bounds(limit, offset)
    now = timezone.now()
    with store_partition(definition):
        documents = documents_query(definition=definition, filters=filters, sort=sort, now=now)
        try:
            with transaction.atomic():  # a savepoint: a failed cast must not poison an outer transaction
                rows = list(documents[offset : offset + limit + 1])
        except DataError:
            # Documents written under an older schema may hold text where the field is now a number or a
            # datetime; PostgreSQL refuses to cast them for the sort.
            raise QueryInvalid(
                f"sort: some documents of {definition.name} hold a {sort!r} value that is not a "
                "valid number or datetime (written under an older schema); fix or rewrite them."
            )
    return DocumentPage(
        documents=[DocumentView.of(row, now) for row in rows[:limit]],
        limit=limit,
        offset=offset,
        has_more=len(rows) > limit,
    )


def documents_query(
    *, definition: StoreDefinition, filters: Any = None, sort: Any = None, now: datetime | None = None
) -> QuerySet[StoreDocument]:
    """The queryset behind query_documents (in the active scope; enter the store's partition first)."""
    now = now or timezone.now()
    documents = StoreDocument.objects.filter(store=definition.name).filter(live(now))
    documents = _apply_filters(documents, definition, clean_filters(definition, filters))
    return documents.order_by(*_ordering(definition, sort))


def clean_filters(definition: StoreDefinition, filters: Any) -> dict[str, Any]:
    """Field-equality filters checked against the schema and normalised like stored values."""
    if filters in (None, ""):
        return {}
    if not isinstance(filters, dict):
        raise QueryInvalid('filter: must be an object of field equalities, e.g. {"kind": "expense"}.')
    check_json_text(filters, "filter")
    problems: list[str] = []
    cleaned: dict[str, Any] = {}
    for name, value in filters.items():
        path = f"filter.{name}"
        spec = definition.schema.get(name)
        if spec is None:
            problems.append(f"{path}: is not a field of {definition.name} ({', '.join(definition.schema)})")
        elif spec.type not in FILTERABLE_TYPES:
            problems.append(f"{path}: {spec.type} fields cannot be filtered on; use {'/'.join(FILTERABLE_TYPES)}")
        else:
            value_problems = check_value(spec, value, path)
            problems.extend(str(problem) for problem in value_problems)
            if not value_problems:
                cleaned[name] = normalise_value(spec, value)
    if problems:
        raise QueryInvalid("; ".join(problems))
    return cleaned


def _apply_filters(documents: QuerySet, definition: StoreDefinition, filters: dict[str, Any]) -> QuerySet:
    if not filters:
        return documents
    if connection.vendor == "postgresql":
        return documents.filter(data__contains=filters)  # jsonb @>: answered by the GIN index
    for index, (name, value) in enumerate(filters.items()):
        # An alias per field, so a field named like a lookup ("contains", "exact") is still a key.
        alias = f"_filter_{index}"
        documents = documents.alias(**{alias: KeyTransform(name, "data")}).filter(**{alias: value})
    return documents


def _ordering(definition: StoreDefinition, sort: Any) -> list[Any]:
    if sort in (None, ""):
        return ["key"]
    if not isinstance(sort, str):
        raise QueryInvalid("sort: must be a field name, or -field for descending.")
    descending = sort.startswith("-")
    name = sort[1:] if descending else sort
    spec = definition.schema.get(name)
    if spec is None:
        raise QueryInvalid(f"sort: {name!r} is not a field of {definition.name} ({', '.join(definition.schema)}).")
    if spec.type not in SORTABLE_TYPES:
        raise QueryInvalid(f"sort: {spec.type} fields cannot be sorted on.")
    expression = sort_expression(name, spec.type)
    ordered = expression.desc(nulls_last=True) if descending else expression.asc(nulls_last=True)
    return [ordered, F("key").asc()]


def sort_expression(name: str, field_type: str):
    """Numbers compare as numbers and datetimes as instants (stored as UTC ISO 8601 text)."""
    text = KeyTextTransform(name, "data")
    if field_type == "number":
        return Cast(text, FloatField())
    if field_type == "datetime":
        if connection.vendor == "postgresql":
            return Cast(text, DateTimeField())
        return Func(text, function="julianday", output_field=FloatField())
    return text


# --- Counts --------------------------------------------------------------------------------------------


def document_counts(*, definitions: dict[str, StoreDefinition]) -> dict[str, int]:
    """Live documents per store: the active scope's for scoped stores, the global partition's for shared."""
    now = timezone.now()
    counts = dict.fromkeys(definitions, 0)
    scoped = [name for name, definition in definitions.items() if not definition.shared]
    shared = [name for name, definition in definitions.items() if definition.shared]
    counts.update(_counts(scoped, now))
    if shared:
        with scope(GLOBAL_SCOPE):
            counts.update(_counts(shared, now))
    return counts


def _counts(names: list[str], now: datetime) -> dict[str, int]:
    if not names:
        return {}
    rows = (
        StoreDocument.objects.filter(store__in=names)
        .filter(live(now))
        .values("store")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {row["store"]: row["count"] for row in rows}
