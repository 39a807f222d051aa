"""Messages get a public id: a random UUID that the history API shows instead of the integer primary key
(a counter shared by every scope; see core.public_ids).

Three steps, the usual way to add a unique column to a filled table: the column as nullable, a fresh UUID
for every existing row (one UPDATE on PostgreSQL), then unique and required (the unique index is built
once, over the filled column).
"""

import uuid

from django.db import migrations, models

from core.public_ids import fill_random_uuids


class Migration(migrations.Migration):

    dependencies = [
        ("agents", "0005_session_leased_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="public_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        fill_random_uuids("agents", "Message"),
        migrations.AlterField(
            model_name="message",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
