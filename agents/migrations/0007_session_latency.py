"""Session.model_calls and Session.model_latency_ms: the number of model calls and their summed latency,
kept with each call from now on (agents.services.add_to_session) and filled here for existing sessions from
their usage rows (one UPDATE over a grouped scan; PostgreSQL and SQLite ≥ 3.33 both know UPDATE ... FROM).
Also the (cost_micros, id) index of Studio's sort by cost."""

from django.db import migrations, models

FILL_FROM_USAGE = (
    'UPDATE "agents_session" SET "model_calls" = "usage"."calls", "model_latency_ms" = "usage"."latency"'
    ' FROM (SELECT "session_id", COUNT(*) AS "calls", SUM("latency_ms") AS "latency" FROM "agents_usagerecord"'
    ' WHERE "session_id" IS NOT NULL GROUP BY "session_id") AS "usage"'
    ' WHERE "agents_session"."id" = "usage"."session_id"'
)


def fill_from_usage(apps, schema_editor) -> None:
    schema_editor.execute(FILL_FROM_USAGE)


class Migration(migrations.Migration):

    dependencies = [
        ("agents", "0006_message_public_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="session",
            name="model_calls",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="session",
            name="model_latency_ms",
            field=models.BigIntegerField(default=0),
        ),
        # Backwards there is nothing to undo: reversing the AddFields drops the columns.
        migrations.RunPython(fill_from_usage, migrations.RunPython.noop, elidable=True),
        migrations.AddIndex(
            model_name="session",
            index=models.Index(fields=["cost_micros", "id"], name="session_cost"),
        ),
    ]
