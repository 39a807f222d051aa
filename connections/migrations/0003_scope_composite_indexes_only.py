"""Per-scope tables keep only their (scope, ...) composite indexes (scoping.models.ScopedModel)."""

from django.db import migrations, models

from scoping.migration_operations import drop_plain_scope_index


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0002_credential_key_rule"),
    ]

    operations = [
        drop_plain_scope_index("connections", "pendingaction"),
        drop_plain_scope_index("connections", "scopedcredential"),
    ]
