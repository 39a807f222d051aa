"""Migration operations shared by the apps whose models are per-scope (ScopedModel)."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

from scoping.context import MAX_SCOPE_ID_LENGTH
from scoping.models import scope_of_context


def drop_plain_scope_index(app_label: str, model_name: str) -> migrations.SeparateDatabaseAndState:
    """The model's `scope` loses `db_index`: its plain (scope) index, and on PostgreSQL the
    varchar_pattern_ops twin, go by DROP INDEX alone. Django's AlterField would rebuild the whole table on
    SQLite, which also drops the table's triggers (the usage rollup's are on agents_usagerecord)."""

    def index_names(model: Any, schema_editor: Any) -> list[str]:
        table, column = model._meta.db_table, model._meta.get_field("scope").column
        names = [schema_editor._create_index_name(table, [column], suffix="")]
        if schema_editor.connection.vendor == "postgresql":
            names.append(schema_editor._create_index_name(table, [column], suffix="_like"))
        return names

    def drop(apps: Any, schema_editor: Any) -> None:
        for name in index_names(apps.get_model(app_label, model_name), schema_editor):
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")

    def recreate(apps: Any, schema_editor: Any) -> None:
        model = apps.get_model(app_label, model_name)
        field = model._meta.get_field("scope")
        schema_editor.execute(schema_editor._create_index_sql(model, fields=[field]))
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(
                schema_editor._create_index_sql(
                    model, fields=[field], suffix="_like", opclasses=["varchar_pattern_ops"]
                )
            )

    field = models.CharField(blank=True, default=scope_of_context, max_length=MAX_SCOPE_ID_LENGTH)
    return migrations.SeparateDatabaseAndState(
        database_operations=[migrations.RunPython(drop, recreate)],
        state_operations=[migrations.AlterField(model_name=model_name, name="scope", field=field)],
    )
