"""MemoryEntry now belongs to the `memory` app (memory/migrations/0001_initial.py): remove it from this
app's state without touching the table, and move its content type (`agents` -> `memory`), so the
permissions granted to users and groups (`agents.add_memoryentry`, ...) become `memory.*` and stay granted.

On a new database there is no content type yet (post_migrate creates it, under `memory`), and nothing to
move. If both rows exist (post_migrate ran between memory 0001 and this migration), the old one is kept
(grants and admin log entries point at it) after taking over the new one's grants and log entries.
Reversible: going back moves the content type to `agents` again.
"""

from django.conf import settings
from django.db import migrations

MODEL = "memoryentry"


def move_content_type(apps, schema_editor, source: str, target: str) -> None:
    db = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    old = ContentType.objects.using(db).filter(app_label=source, model=MODEL).first()
    if old is None:
        return
    new = ContentType.objects.using(db).filter(app_label=target, model=MODEL).first()
    if new is not None:
        merge_content_type(apps, db, keep=old, drop=new)
    old.app_label = target
    old.save(using=db, update_fields=["app_label"])


def merge_content_type(apps, db: str, *, keep, drop) -> None:
    """Carry `drop`'s permissions (with their grants) and admin log entries over to `keep`, then delete it."""
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    User = apps.get_model(settings.AUTH_USER_MODEL)
    LogEntry = apps.get_model("admin", "LogEntry")
    kept = {permission.codename: permission for permission in Permission.objects.using(db).filter(content_type=keep)}
    for permission in Permission.objects.using(db).filter(content_type=drop):
        same = kept.get(permission.codename)
        if same is None:
            permission.content_type = keep
            permission.save(using=db, update_fields=["content_type"])
            continue
        for group in Group.objects.using(db).filter(permissions=permission):
            group.permissions.add(same)
        for user in User.objects.using(db).filter(user_permissions=permission):
            user.user_permissions.add(same)
    LogEntry.objects.using(db).filter(content_type=drop).update(content_type=keep)
    drop.delete()


def forwards(apps, schema_editor) -> None:
    move_content_type(apps, schema_editor, "agents", "memory")


def backwards(apps, schema_editor) -> None:
    move_content_type(apps, schema_editor, "memory", "agents")


class Migration(migrations.Migration):

    dependencies = [
        ("agents", "0002_memoryentry"),
        ("memory", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="MemoryEntry")],
            database_operations=[],
        ),
        migrations.RunPython(forwards, backwards),
    ]
