"""MemoryChange: the record of every operator edit and delete of a memory entry (who, when, before, after)."""

import django.db.models.deletion
import django.db.models.manager
import scoping.models
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("memory", "0002_memoryentry_public_id"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="MemoryChange",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("scope", models.CharField(blank=True, db_index=True, default=scoping.models.scope_of_context,
                                           max_length=255)),
                ("entry_id", models.UUIDField(help_text="The entry's public id (it may have been deleted since).")),
                ("action", models.CharField(choices=[("edited", "Edited"), ("deleted", "Deleted")], max_length=16)),
                ("content_before", models.TextField()),
                ("content_after", models.TextField(blank=True, help_text="Empty for a delete.")),
                ("actor_name", models.CharField(help_text="The username at the time (kept if the user goes).",
                                                max_length=150)),
                ("at", models.DateTimeField(auto_now_add=True)),
                ("actor", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                            to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["-at", "-id"],
                "indexes": [models.Index(fields=["scope", "-at", "-id"], name="memorychange_scope_at")],
            },
            managers=[
                ("objects", django.db.models.manager.Manager()),
                ("all_scopes", django.db.models.manager.Manager()),
            ],
        ),
    ]
