"""Per-scope tables keep only their (scope, ...) composite indexes (scoping.models.ScopedModel)."""

from django.db import migrations, models

from scoping.migration_operations import drop_plain_scope_index


class Migration(migrations.Migration):
    dependencies = [
        ("scopetest", "0001_initial"),
    ]

    operations = [
        drop_plain_scope_index("scopetest", "note"),
    ]
