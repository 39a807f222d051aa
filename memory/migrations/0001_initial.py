"""MemoryEntry moves here from `agents` without touching the data.

The table stays `agents_memoryentry` (its rows, indexes and sequence untouched; no lock, no copy, and
anything reading the table by name keeps working), so this migration changes Django's state only: the
database operations are empty. On a new database `agents` 0002 has created the table just before (the
dependency below); `agents` 0003 then removes the model from its own state and hands its content type and
permissions over (`agents.add_memoryentry` becomes `memory.add_memoryentry`, grants kept).
"""

import django.db.models.manager
import scoping.models
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("agents", "0002_memoryentry"),  # created the table this model keeps
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="MemoryEntry",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("scope", models.CharField(blank=True, db_index=True,
                                                   default=scoping.models.scope_of_context, max_length=255)),
                        ("content", models.TextField()),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "verbose_name_plural": "memory entries",
                        "db_table": "agents_memoryentry",
                        "ordering": ["created_at", "id"],
                        "indexes": [models.Index(fields=["scope", "created_at"], name="memoryentry_scope_created")],
                    },
                    managers=[
                        ("objects", django.db.models.manager.Manager()),
                        ("all_scopes", django.db.models.manager.Manager()),
                    ],
                ),
            ],
            database_operations=[],
        ),
    ]
