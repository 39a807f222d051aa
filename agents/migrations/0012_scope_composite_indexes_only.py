"""Per-scope tables keep only their (scope, ...) composite indexes (scoping.models.ScopedModel)."""

from django.db import migrations, models

from scoping.migration_operations import drop_plain_scope_index


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0011_feedback_deploy"),
    ]

    operations = [
        drop_plain_scope_index("agents", "feedback"),
        drop_plain_scope_index("agents", "message"),
        drop_plain_scope_index("agents", "session"),
        drop_plain_scope_index("agents", "sessiontag"),
        drop_plain_scope_index("agents", "sessiontranscript"),
        drop_plain_scope_index("agents", "usagerecord"),
        migrations.AddIndex(
            model_name="sessiontranscript",
            index=models.Index(fields=["scope"], name="transcript_scope"),
        ),
    ]
