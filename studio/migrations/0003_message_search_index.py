"""On PostgreSQL only: the full-text indexes of the Studio sessions search (studio.selectors.sessions):
GIN indexes on `to_tsvector('english', text)` of messages and `to_tsvector('english', title)` of sessions,
the exact expressions the search filters on.

Built CONCURRENTLY (so this migration is not atomic): a plain CREATE INDEX would block every new message
while it reads the whole message table. An index left invalid by an interrupted build is dropped first.
Other databases skip this (the search there is a substring match without an index).
"""

from django.db import migrations

SEARCH_CONFIG = "english"
INDEXES = [
    ("message_text_search", "agents_message", "text"),
    ("session_title_search", "agents_session", "title"),
]


def create_search_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, column in INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
        schema_editor.execute(
            f'CREATE INDEX CONCURRENTLY "{name}" ON "{table}"'
            f" USING gin (to_tsvector('{SEARCH_CONFIG}'::regconfig, \"{column}\"))"
        )


def drop_search_indexes(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _, _ in INDEXES:
        schema_editor.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("studio", "0002_studio_viewers_group"),
        ("agents", "0005_session_leased_index"),
    ]

    operations = [
        migrations.RunPython(create_search_indexes, drop_search_indexes, elidable=False),
    ]
