"""Per-scope tables keep only their (scope, ...) composite indexes (scoping.models.ScopedModel)."""

from django.db import migrations, models

from scoping.migration_operations import drop_plain_scope_index


class Migration(migrations.Migration):
    dependencies = [
        ("stores", "0002_data_gin_index"),
    ]

    operations = [
        drop_plain_scope_index("stores", "storedocument"),
        drop_plain_scope_index("stores", "storedocumentversion"),
    ]
