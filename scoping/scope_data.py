"""Every kind of data a scope holds, registered by the app that owns it, so a scope can be exported and erased
as a whole (SPEC §10) by code that knows none of the apps above it.

Each app registers its kinds in its AppConfig.ready() with `register_scope_data(ScopeDataKind(...))`. A kind is
one table (or rows inside another kind's table: a message's tool calls), with:

- `rows`: the scope's rows as JSON-ready dicts, streamed from the database in chunks (never a list of every
  row), or None for a table that only repeats other kinds' data (a session's transcript) and is not exported;
- how to erase it: `erase_batch` takes up to `limit` of the scope's rows away in one statement and says how
  many (by default a DELETE; the usage rows are kept for billing under an anonymous id instead);
- `follows`: tables the database keeps in step with this one (the usage rollup, by triggers), never written
  here but counted, so an erase proves they hold nothing of the scope either.

Order matters: the export goes through the kinds in the order they were registered, the erase in the reverse
order. So register a kind after every kind its rows point to (a message after its session): its rows are then
gone before the rows they point to. Apps register in INSTALLED_APPS order; the scope's own row comes first.

tests/scoping/test_scope_data.py walks every model with a `scope` or `scope_id` column and fails when one is
neither registered here nor listed in `NOT_SCOPE_DATA` with the reason, so a new table cannot be forgotten.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, models

# Rows fetched from the database at a time while exporting.
EXPORT_CHUNK_ROWS = 1000

RowSource = Callable[[str], Iterator[dict[str, Any]]]
EraseBatch = Callable[[type[models.Model], str, str, int], int]


def delete_batch(model: type[models.Model], scope_field: str, scope_id: str, limit: int) -> int:
    """Delete up to `limit` of the scope's rows of `model` in one statement; how many went.

    Plain SQL on purpose: Django's QuerySet.delete() collects related rows in Python first (a query per
    relation, the rows themselves in memory), where the erase has already emptied every table that points
    here (the kinds' order)."""
    primary_key, scope_column = model._meta.pk, model._meta.get_field(scope_field)
    assert primary_key is not None and primary_key.column and isinstance(scope_column, models.Field)
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(primary_key.column)
    column = connection.ops.quote_name(str(scope_column.column))
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE {pk} IN (SELECT {pk} FROM {table} WHERE {column} = %s LIMIT %s)",  # noqa: S608
            [scope_id, limit],
        )
        return int(cursor.rowcount)


@dataclass(frozen=True)
class ScopeDataKind:
    """One kind of a scope's data. `name` is the export's `kind` and the key of the erase's counts."""

    name: str
    # Its table; None: its rows live inside another kind's table and go with them (a message's tool calls).
    model: type[models.Model] | None
    # The export of a scope's rows; None: not exported (it only repeats other kinds' data).
    rows: RowSource | None
    erase_batch: EraseBatch = delete_batch
    # Tables the database keeps in step with `model` (never written here; checked empty after an erase).
    follows: tuple[type[models.Model], ...] = ()
    # The column holding the scope id.
    scope_field: str = "scope"

    def __post_init__(self) -> None:
        if self.model is None and self.rows is None:
            raise ValueError(f"{self.name}: a kind without a table must be exported (rows), or it is nothing.")

    def tables(self) -> tuple[type[models.Model], ...]:
        return ((self.model,) if self.model is not None else ()) + self.follows

    def remaining(self, scope_id: str) -> int:
        """The scope's rows still in this kind's tables (and those kept in step with them)."""
        return sum(
            model._base_manager.filter(**{self.scope_field: scope_id}).count()  # operator code: every scope
            for model in self.tables()
        )

    def exists(self, scope_id: str) -> bool:
        return any(model._base_manager.filter(**{self.scope_field: scope_id}).exists() for model in self.tables())


_kinds: dict[str, ScopeDataKind] = {}


def register_scope_data(kind: ScopeDataKind) -> ScopeDataKind:
    """Add a kind (idempotent for the same kind; a second kind of the same name or table is an error)."""
    existing = _kinds.get(kind.name)
    if existing == kind:
        return kind
    if existing is not None:
        raise ValueError(f"A scope data kind named {kind.name!r} is already registered.")
    taken = {model for other in _kinds.values() for model in other.tables()}
    if taken & set(kind.tables()):
        raise ValueError(f"{kind.name}: its table is already another kind's.")
    _kinds[kind.name] = kind
    return kind


def scope_data_kinds() -> list[ScopeDataKind]:
    """Every registered kind, in registration order (the export's order; the erase goes backwards)."""
    return list(_kinds.values())


# Tables with a scope column that are not a scope's data, and why (the registry's completeness test reads it).
NOT_SCOPE_DATA: dict[str, str] = {
    "scoping.ApiKey": "the SaaS's access configuration (a key may be restricted to a scope), not the tenant's data",
    "scoping.ScopeAuditEntry": "the record of exports and erasures, which must outlive the data it describes",
}


# --- the rows of an export ------------------------------------------------------------------------------------


def json_ready(value: Any) -> Any:
    """A column's value as JSON can carry it: times in ISO 8601, UUIDs and decimals as strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return value


Field = str | tuple[str, str]  # a column, or (name in the export, lookup path)


def model_rows(
    model: type[models.Model], fields: Sequence[Field], *, order_by: Sequence[str], scope_field: str = "scope"
) -> RowSource:
    """The export of `model`'s rows: the `fields` of each (a name, or (name, lookup) to rename or follow a
    relation), in `order_by` (lead with columns the scope's index covers), EXPORT_CHUNK_ROWS at a time from
    one query (a server-side cursor on PostgreSQL)."""
    names = [field if isinstance(field, str) else field[0] for field in fields]
    lookups = [field if isinstance(field, str) else field[1] for field in fields]
    if "kind" in names:
        raise ValueError(f"{model.__name__}: 'kind' names the kind of each exported line; rename that field.")

    def rows(scope_id: str) -> Iterator[dict[str, Any]]:
        queryset = model._base_manager.filter(**{scope_field: scope_id}).order_by(*order_by)
        for values in queryset.values_list(*lookups).iterator(chunk_size=EXPORT_CHUNK_ROWS):
            yield {name: json_ready(value) for name, value in zip(names, values, strict=True)}

    return rows


# --- the scoping app's own kind: the scope's row (label, metadata, activity) ------------------------------------


def scope_kind() -> ScopeDataKind:
    from scoping.models import Scope

    fields = ["scope_id", "label", "metadata", "budget_cost_micros", "first_seen_at", "last_seen_at"]
    return ScopeDataKind(
        "scope", Scope, model_rows(Scope, fields, order_by=["pk"], scope_field="scope_id"), scope_field="scope_id"
    )
