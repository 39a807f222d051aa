"""Memory entries get a public id: a random UUID that the API, the `memory` tool and the prompt show
instead of the integer primary key (a counter shared by every scope; see core.public_ids).

Three steps, the usual way to add a unique column to a filled table: the column as nullable, a fresh UUID
for every existing row, then unique and required.
"""

import uuid

from django.db import migrations, models

from core.public_ids import fill_random_uuids


class Migration(migrations.Migration):

    dependencies = [
        ("memory", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="memoryentry",
            name="public_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        fill_random_uuids("memory", "MemoryEntry"),
        migrations.AlterField(
            model_name="memoryentry",
            name="public_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True),
        ),
    ]
