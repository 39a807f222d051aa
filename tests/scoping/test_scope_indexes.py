"""Every per-scope table can find a scope's rows through an index that leads with `scope` (the chat's reads,
Studio's, and a scope's export and erase), and none keeps a plain (scope) index beside a composite one that
already serves `scope = %s` (an extra index entry per insert and per non-HOT update, for nothing)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from agents.models import Session, UsageRecord, UsageRollup
from scoping.models import ScopedModel

pytestmark = pytest.mark.django_db


# Derived tables read by period first, never by scope alone (a scope's export and erase go through the rows
# they are summed from, whose triggers keep them).
READ_BY_PERIOD = {"agents_usagescopemonth": ("month", "scope")}


def scoped_tables() -> list[str]:
    return sorted(
        model._meta.db_table
        for model in apps.get_models()
        if issubclass(model, ScopedModel) and not model._meta.proxy and model._meta.managed
    )


def leading_scope_indexes(table: str) -> dict[str, tuple[str, ...]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name: tuple(info["columns"])
        for name, info in constraints.items()
        if (info["index"] or info["unique"]) and info["columns"] and info["columns"][0] == "scope"
    }


def test_there_are_scoped_tables_to_check():
    assert {"agents_session", "agents_message", "agents_usagerecord", "agents_sessiontranscript"} <= set(
        scoped_tables()
    )


@pytest.mark.parametrize("table", scoped_tables())
def test_a_scopes_rows_are_found_through_one_index_leading_with_scope(table):
    indexes = leading_scope_indexes(table)
    if table in READ_BY_PERIOD:
        assert indexes == {}
        return
    assert indexes, f"{table}: no index leads with scope"
    composites = [columns for columns in indexes.values() if len(columns) > 1]
    plain = [name for name, columns in indexes.items() if columns == ("scope",)]
    if composites:
        # Partial indexes (a WHERE) serve only their rows, so a plain one may stand beside them.
        partial = {name for name in plain if "budget" in name}
        assert set(plain) <= partial, f"{table}: {plain} repeat what {composites} already serve"


# --- the migrations that dropped the plain indexes -------------------------------------------------------

BEFORE_THE_DROP = [("agents", "0011_feedback_deploy"), ("memory", "0003_memorychange")]


def migrate(targets=None):
    executor = MigrationExecutor(connection)
    executor.migrate(targets or executor.loader.graph.leaf_nodes())


def plain_scope_indexes(table: str) -> list[str]:
    """Django's own names for a field's db_index (and on PostgreSQL its _like twin): <table>_scope_<hash>."""
    return [name for name in leading_scope_indexes(table) if name.startswith(f"{table}_scope_")]


@pytest.mark.django_db(transaction=True)
def test_the_drop_is_reversible_and_keeps_the_usage_tables_triggers():
    """Only indexes change, both ways: no table is rebuilt (SQLite would lose the usage rollup's triggers)."""
    try:
        migrate(BEFORE_THE_DROP)
        assert plain_scope_indexes("agents_session") and plain_scope_indexes("agents_memoryentry")
    finally:
        migrate()
    assert plain_scope_indexes("agents_session") == plain_scope_indexes("agents_memoryentry") == []
    session = Session.all_scopes.create(scope="tenant-a", deploy_id="d", model="m", provider="local")
    UsageRecord.all_scopes.create(
        scope="tenant-a", session=session, deploy_id="d", provider="local", model="m", input_tokens=7, output_tokens=1
    )
    assert UsageRollup.all_scopes.filter(scope="tenant-a").values_list("input_tokens", flat=True).get() == 7
