"""The "Studio viewers" group, holding `studio.view_studio`.

Django creates content types and permissions in `post_migrate`, after every migration has run, so this
migration creates the two rows it needs itself (the same rows `post_migrate` would create, found again
there). Running it twice changes nothing; reversing it removes the group and the permission.
"""

from django.db import migrations

APP_LABEL = "studio"
MODEL = "studio"
CODENAME = "view_studio"
PERMISSION_NAME = "Can view Studio: sessions, usage and memory of every scope"
GROUP = "Studio viewers"


def create_viewers_group(apps, schema_editor) -> None:
    db = schema_editor.connection.alias
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    content_type, _ = ContentType.objects.using(db).get_or_create(app_label=APP_LABEL, model=MODEL)
    permission, _ = Permission.objects.using(db).get_or_create(
        content_type=content_type, codename=CODENAME, defaults={"name": PERMISSION_NAME},
    )
    group, _ = Group.objects.using(db).get_or_create(name=GROUP)
    group.permissions.add(permission)


def remove_viewers_group(apps, schema_editor) -> None:
    db = schema_editor.connection.alias
    apps.get_model("auth", "Group").objects.using(db).filter(name=GROUP).delete()
    apps.get_model("auth", "Permission").objects.using(db).filter(
        content_type__app_label=APP_LABEL, content_type__model=MODEL, codename=CODENAME,
    ).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("studio", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_viewers_group, remove_viewers_group),
    ]
