"""Writing demo rows fast: COPY on PostgreSQL, executemany INSERTs elsewhere.

Primary keys are assigned by the generator (UUIDs for sessions, a reserved range of integers from
`next_id` for messages and usage rows), so nothing is read back; `reset_sequences` then moves the id
sequences past them. `bulk_load` sets indexes and constraints aside while big tables are filled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.db.models import Max

from studio.model_access import every_scope


class RowWriter:
    """Insert tuples of values into a model's table: COPY on PostgreSQL, executemany elsewhere.

    `fields` are attribute names in tuple order; JSON values arrive as JSON text. Fields of the model that
    are not given get their default (so a column added later does not break the generator): one value for
    all rows, except for a unique field (a public id), whose default is called for each row."""

    def __init__(self, model: type[models.Model], fields: Sequence[str]) -> None:
        self.model = model
        opts = model._meta
        self.fields = [concrete_field(model, name) for name in fields]
        given = {f.attname for f in self.fields}
        extra = [
            f
            for f in opts.concrete_fields
            if f.attname not in given and not (f.primary_key and isinstance(f, models.AutoField | models.BigAutoField))
        ]
        self.per_row = [f for f in extra if f.unique]
        self.extra = [f for f in extra if not f.unique]
        self.extra_values = tuple(self._default(f) for f in self.extra)
        self.columns = [str(f.column) for f in self.fields + self.extra + self.per_row]
        self.postgres = connection.vendor == "postgresql"
        qn = connection.ops.quote_name
        self.table = qn(opts.db_table)
        self.column_sql = ", ".join(qn(c) for c in self.columns)
        if not self.postgres:
            self.converters: list[Callable[[Any], Any] | None] = [
                None if isinstance(f, models.JSONField) else self._converter(f) for f in self.fields
            ]

    def _default(self, f: models.Field) -> Any:
        value = f.get_default()
        if isinstance(f, models.JSONField):
            return json.dumps(value)
        if connection.vendor != "postgresql":
            return f.get_db_prep_save(value, connection)
        return value

    @staticmethod
    def _converter(f: models.Field) -> Callable[[Any], Any]:
        return lambda value: f.get_db_prep_save(value, connection)

    def write(self, rows: Iterable[tuple]) -> int:
        rows = list(rows)
        if not rows:
            return 0
        if self.postgres:
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {self.table} ({self.column_sql}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row + self._rest())
            return len(rows)
        converters = self.converters
        prepared = [
            tuple(value if convert is None else convert(value) for convert, value in zip(converters, row, strict=True))
            + self._rest()
            for row in rows
        ]
        placeholders = ", ".join(["%s"] * len(self.columns))
        with connection.cursor() as cursor:
            # Table and column names come from the model's metadata, quoted by the backend.
            cursor.executemany(
                f"INSERT INTO {self.table} ({self.column_sql}) VALUES ({placeholders})",  # noqa: S608
                prepared,
            )
        return len(rows)

    def _rest(self) -> tuple:
        """The values of the columns not given, for one row."""
        if not self.per_row:
            return self.extra_values
        return self.extra_values + tuple(self._default(f) for f in self.per_row)


def reset_sequences(model_list: list[type[models.Model]]) -> None:
    """After inserting explicit integer ids, move the id sequences past them (PostgreSQL)."""
    statements = connection.ops.sequence_reset_sql(no_style(), model_list)
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


def next_id(model: type[models.Model]) -> int:
    return (every_scope(model).aggregate(top=Max("pk"))["top"] or 0) + 1


@contextmanager
def bulk_load(model_list: list[type[models.Model]], *, enabled: bool, log: Callable[[str], None]) -> Iterator[None]:
    """Load rows into empty tables the fast way on PostgreSQL: in one transaction, drop the tables'
    secondary indexes, unique constraints and foreign keys, load, then put them back (a sorted index
    build and one validating join per foreign key beat millions of random index insertions and trigger
    checks). Being one transaction, a failure rolls everything back, indexes included. The tables are
    locked while it runs. Elsewhere, or when disabled or the tables are not empty, it is a plain
    transaction."""
    tables = [m._meta.db_table for m in model_list]
    if not enabled or connection.vendor != "postgresql" or any(every_scope(m).exists() for m in model_list):
        with transaction.atomic():
            yield
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit TO off")
        cursor.execute("SET LOCAL maintenance_work_mem TO '512MB'")
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('f', 'u') ORDER BY contype DESC",
            [tables],
        )
        constraints = cursor.fetchall()  # unique constraints first (a foreign key may need one back)
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            "WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _ in reversed(constraints):
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}")
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
        log(f"  fast load: {len(indexes)} indexes and {len(constraints)} constraints set aside until the end")
        yield
        started = time.monotonic()
        for _, definition in indexes:
            cursor.execute(definition)
        for table, name, definition in constraints:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {connection.ops.quote_name(name)} {definition}")
        log(f"  indexes and constraints rebuilt ({time.monotonic() - started:.1f} s)")


def concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is a relation, not a column.")
    return field
