"""Public ids: what the API, the events and the model's tools call a row, instead of its primary key.

Integer primary keys come from one counter shared by every scope, so a scope that sees its own new ids
learns how fast every other scope writes. A row that has to be named outside the server carries a
`public_id` (a random UUID, version 4) and is looked up by it; the integer stays internal.

- `parse_public_id`: a public id from a URL or a JSON argument, or None for anything else (an integer, a
  malformed string), so that a lookup answers 404 like for a missing row.
- `fill_random_uuids`: the migration step that gives every existing row its own UUID, between adding the
  column as nullable and making it unique and required.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import migrations

MAX_PUBLIC_ID_CHARS = 64  # longer than any spelling uuid.UUID accepts ("urn:uuid:{...}")
BACKFILL_BATCH = 2000


def parse_public_id(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str) or len(value) > MAX_PUBLIC_ID_CHARS:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def fill_random_uuids(app_label: str, model_name: str, field_name: str = "public_id") -> migrations.RunPython:
    """A RunPython step setting `field_name` to a fresh uuid4 on every row where it is NULL.

    PostgreSQL does it in one statement (`gen_random_uuid()`, version 4, built in since PostgreSQL 13);
    elsewhere in batches of UPDATEs. Reversing does nothing: the column is dropped by the AddField's own
    reversal."""

    def forward(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        connection = schema_editor.connection
        quote = connection.ops.quote_name
        table = quote(model._meta.db_table)
        field = model._meta.get_field(field_name)
        column = quote(field.column)
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"UPDATE {table} SET {column} = gen_random_uuid() WHERE {column} IS NULL")  # noqa: S608
                return
            key = quote(model._meta.pk.column)
            while True:
                cursor.execute(f"SELECT {key} FROM {table} WHERE {column} IS NULL LIMIT %s", [BACKFILL_BATCH])  # noqa: S608
                keys = [row[0] for row in cursor.fetchall()]
                if not keys:
                    return
                cursor.executemany(
                    f"UPDATE {table} SET {column} = %s WHERE {key} = %s",  # noqa: S608
                    [(field.get_db_prep_save(uuid.uuid4(), connection), pk) for pk in keys],
                )

    return migrations.RunPython(forward, migrations.RunPython.noop, elidable=False)
