"""Each rating keeps the deploy that had answered its session (Cost & Usage's positive share per deploy
reads it from the rating instead of joining every rated session); existing ratings take their session's."""

from django.db import migrations, models

FILL = """
UPDATE agents_feedback
SET deploy_id = (SELECT deploy_id FROM agents_session WHERE agents_session.id = agents_feedback.session_id)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("agents", "0010_session_budget_reserve"),
    ]

    operations = [
        migrations.AddField(
            model_name="feedback",
            name="deploy_id",
            field=models.CharField(blank=True, db_default="", default="", max_length=32),
        ),
        migrations.RunSQL(FILL, migrations.RunSQL.noop, elidable=True),
    ]
