"""MemoryEntry moved from `agents` to `memory` without touching the data (memory 0001, agents 0003), then got
its public id (memory 0002, last test).

Each test migrates this database back to the state before the move (agents 0002, no memory migrations:
what a database of the earlier code holds), writes there through the historical models, migrates forward
and reads it back: the rows, the table's indexes, the id sequence, and the permissions granted to users
and groups (`agents.add_memoryentry` becomes `memory.add_memoryentry`). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core import public_ids
from memory import selectors, services
from memory.config import MemoryConfig
from memory.models import MemoryEntry
from scoping.context import scope

BEFORE_THE_MOVE = [("agents", "0002_memoryentry"), ("memory", None)]
ONLY_MEMORY_0001 = [("memory", "0001_initial")]
TABLE = "agents_memoryentry"
CONFIG = MemoryConfig(enabled=True, max_entries=10, max_total_chars=1000)


def migrate(targets: list[tuple[str, str | None]] | None = None):
    """Migrate to `targets` (None: every app's latest); returns the apps of that state."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    ContentType.objects.clear_cache()
    executor.loader.build_graph()
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


@pytest.fixture
def before_the_move(transactional_db):
    """The historical apps of a database from before the move; migrates forward again afterwards."""
    try:
        yield migrate(BEFORE_THE_MOVE)
    finally:
        migrate()


def table_indexes() -> dict[str, tuple[str, ...]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return {name: tuple(c["columns"]) for name, c in constraints.items() if c["index"] and not c["primary_key"]}


def test_the_move_changes_no_table(transactional_db):
    """Both ways, the two migrations run no SQL (only the content type move, in Python)."""
    assert (MemoryEntry._meta.app_label, MemoryEntry._meta.db_table) == ("memory", TABLE)
    executor = MigrationExecutor(connection)
    nodes = [("memory", "0001_initial"), ("agents", "0003_memoryentry_moves_to_memory")]
    migrations = [executor.loader.graph.nodes[node] for node in nodes]
    for plan in ([(m, False) for m in migrations], [(m, True) for m in reversed(migrations)]):
        statements = executor.loader.collect_sql(plan)
        assert [sql for sql in statements if not sql.startswith("--")] == []


def test_entries_indexes_and_ids_survive_the_move(before_the_move):
    OldEntry = before_the_move.get_model("agents", "MemoryEntry")
    assert OldEntry._meta.db_table == TABLE
    old = OldEntry.objects.create(scope="tenant-a", content="likes tea")
    OldEntry.objects.create(scope="tenant-b", content="has a cat")
    indexes = table_indexes()
    assert ("scope", "created_at") in indexes.values() and "memoryentry_scope_created" in indexes

    migrate()

    entry = MemoryEntry.all_scopes.get(pk=old.pk)
    assert (entry.scope, entry.content, entry.created_at) == ("tenant-a", "likes tea", old.created_at)
    # Every index survives the move; only memory 0004 (later) drops the plain (scope) index and its LIKE twin,
    # which the (scope, created_at) index makes redundant.
    plain_scope = {name for name in indexes if name.startswith("agents_memoryentry_scope_")}
    assert len(plain_scope) == (2 if connection.vendor == "postgresql" else 1)
    assert table_indexes() == {name: columns for name, columns in indexes.items() if name not in plain_scope}
    with scope("tenant-a"):
        assert [e.content for e in selectors.list_entries()] == ["likes tea"]
        added = services.add_entry(content="prefers EUR", config=CONFIG)
    assert added.created and added.entry.pk > old.pk  # the id sequence carries on
    assert MemoryEntry.all_scopes.count() == 3


def test_granted_permissions_become_memory_permissions(before_the_move):
    content_type = ContentType.objects.get(model="memoryentry")
    assert content_type.app_label == "agents"
    adder = User.objects.create_user("adder", is_staff=True)
    adder.user_permissions.add(Permission.objects.get(content_type=content_type, codename="add_memoryentry"))
    group = Group.objects.create(name="forgetters")
    group.permissions.add(Permission.objects.get(content_type=content_type, codename="delete_memoryentry"))
    remover = User.objects.create_user("remover", is_staff=True)
    remover.groups.add(group)
    assert User.objects.get(pk=adder.pk).has_perm("agents.add_memoryentry")

    migrate()

    moved = ContentType.objects.get(model="memoryentry")
    assert (moved.pk, moved.app_label) == (content_type.pk, "memory")
    assert moved.model_class() is MemoryEntry
    adder, remover = User.objects.get(pk=adder.pk), User.objects.get(pk=remover.pk)
    assert adder.has_perm("memory.add_memoryentry") and not adder.has_perm("agents.add_memoryentry")
    assert remover.has_perm("memory.delete_memoryentry") and not remover.has_perm("memory.add_memoryentry")
    assert sorted(Permission.objects.filter(content_type=moved).values_list("codename", flat=True)) == [
        "add_memoryentry",
        "change_memoryentry",
        "delete_memoryentry",
        "view_memoryentry",
    ]


def test_a_memory_content_type_made_in_between_is_merged_into_the_old_one(before_the_move):
    """post_migrate ran after memory 0001 but before agents 0003 (e.g. `migrate memory 0001`): both content
    types exist. The old row stays (with every grant and log entry of both); the new one goes."""
    old_type = ContentType.objects.get(model="memoryentry")
    adder = User.objects.create_user("adder", is_staff=True)
    adder.user_permissions.add(Permission.objects.get(content_type=old_type, codename="add_memoryentry"))
    migrate(ONLY_MEMORY_0001)
    new_type = ContentType.objects.create(app_label="memory", model="memoryentry")
    viewers = Group.objects.create(name="viewers")
    viewers.permissions.add(
        Permission.objects.create(content_type=new_type, codename="view_memoryentry", name="Can view memory entry")
    )
    viewers.user_set.add(adder)
    Permission.objects.create(content_type=new_type, codename="archive_memoryentry", name="Can archive")
    log = LogEntry.objects.create(
        user=adder, content_type=new_type, object_id="1", object_repr="x", action_flag=ADDITION
    )

    migrate()

    kept = ContentType.objects.get(model="memoryentry")
    assert (kept.pk, kept.app_label) == (old_type.pk, "memory")
    assert not ContentType.objects.filter(pk=new_type.pk).exists()
    adder = User.objects.get(pk=adder.pk)
    assert adder.has_perm("memory.add_memoryentry") and adder.has_perm("memory.view_memoryentry")
    assert Permission.objects.filter(content_type=kept, codename="archive_memoryentry").exists()
    assert Permission.objects.filter(content_type=kept, codename="view_memoryentry").count() == 1
    assert LogEntry.objects.get(pk=log.pk).content_type_id == kept.pk


def test_existing_entries_get_their_own_random_public_ids(transactional_db, monkeypatch):
    """memory 0002 adds `public_id` to a filled table: every row gets its own UUID (version 4), then the
    column is unique and required; new entries get one too. (Batches of 2 here, so several are filled.)"""
    monkeypatch.setattr(public_ids, "BACKFILL_BATCH", 2)
    try:
        old_apps = migrate(ONLY_MEMORY_0001)
        OldEntry = old_apps.get_model("memory", "MemoryEntry")
        old = [OldEntry.objects.create(scope=f"tenant-{n % 2}", content=f"fact {n}") for n in range(5)]
        migrate()
        ids = dict(MemoryEntry.all_scopes.values_list("pk", "public_id"))
        assert sorted(ids) == sorted(entry.pk for entry in old)
        assert len(set(ids.values())) == 5 and all(value.version == 4 for value in ids.values())
        with scope("tenant-0"):
            added = services.add_entry(content="prefers EUR", config=CONFIG).entry
        assert added.public_id.version == 4 and added.public_id not in ids.values()
        field = MemoryEntry._meta.get_field("public_id")
        assert field.unique and not field.null
    finally:
        migrate()
