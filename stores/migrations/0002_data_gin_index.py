"""On PostgreSQL only: a GIN index on StoreDocument.data (jsonb_path_ops), so query_store's field-equality
filters (`data @> '{"field": value}'`) are index scans. Other databases skip it (they filter with key
lookups over the (scope, store, ...) indexes)."""

from django.db import migrations

INDEX_NAME = "storedoc_data_gin"


def create_gin_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f'CREATE INDEX IF NOT EXISTS "{INDEX_NAME}" ON "stores_storedocument" USING gin ("data" jsonb_path_ops)'
    )


def drop_gin_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f'DROP INDEX IF EXISTS "{INDEX_NAME}"')


class Migration(migrations.Migration):

    dependencies = [
        ("stores", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(create_gin_index, drop_gin_index, elidable=False),
    ]
