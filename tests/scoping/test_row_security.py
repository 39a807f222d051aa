"""Row-level security (AMODAL_DB_ROW_SECURITY): inside a scope, even a query that bypasses the scoped manager
sees and writes only that scope's rows; with no scope (Studio) the connection sees everything."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from agents.models import Message, UsageRecord
from memory.models import MemoryEntry
from scoping import row_security
from scoping.context import scope
from tests.agents.test_query_counts import DB_HANDOFFS, count_queries, send, shape  # noqa: F401
from tests.scoping.scope_fill import fill_scope

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row-level security is PostgreSQL's (SQLite has none)"
)
ROW_SECURITY_ON = override_settings(AMODAL_DB_ROW_SECURITY=True)


def scopes_in_every_table() -> dict[str, set[str]]:
    """Raw SQL, no manager: the scope of every row of every registered table, per table."""
    seen = {}
    with connection.cursor() as cursor:
        for table, column in row_security.policy_tables():
            cursor.execute(f'SELECT DISTINCT "{column}" FROM "{table}"')  # noqa: S608
            seen[table] = {row[0] for row in cursor.fetchall()}
    return seen


def current_user() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        return str(cursor.fetchone()[0])


@pytest.fixture(scope="module")
def installed(django_db_setup, django_db_blocker) -> list[str]:
    """The role and policies in the test database, as `migrate` installs them with the setting on (PostgreSQL's
    default); installing again changes nothing. Tests that turn the setting off connect as the owner, which the
    policies do not restrict."""
    with django_db_blocker.unblock():
        covered = row_security.install(connection)
        assert row_security.install(connection) == covered  # idempotent: the role and policies exist already
        return covered


@pytest.fixture
def two_tenants(installed, db):
    covered = installed
    fill_scope("tenant-a")
    fill_scope("tenant-b", label="Other")
    return covered


def test_every_registered_table_has_the_policy(two_tenants):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_policies WHERE policyname = %s AND %s = ANY(roles)",
            [row_security.POLICY, row_security.tenant_role()],
        )
        with_policy = {row[0] for row in cursor.fetchall()}
    assert set(two_tenants) == with_policy
    assert {"agents_message", "agents_usagerollup", "stores_storedocument", "scoping_scope"} <= with_policy


@ROW_SECURITY_ON
def test_inside_a_scope_raw_sql_reads_only_that_scope(two_tenants):
    assert all(scopes == {"tenant-a", "tenant-b"} for scopes in scopes_in_every_table().values())

    with scope("tenant-a"):
        assert current_user() == row_security.tenant_role()
        assert scopes_in_every_table() == {table: {"tenant-a"} for table in two_tenants}
        assert {entry.scope for entry in MemoryEntry.all_scopes.all()} == {"tenant-a"}  # the unscoped manager

    # Studio, admin, management commands: no scope, the owner, every row.
    assert current_user() == "postgres"
    assert all(scopes == {"tenant-a", "tenant-b"} for scopes in scopes_in_every_table().values())


@ROW_SECURITY_ON
def test_inside_a_scope_another_scopes_row_cannot_be_written(two_tenants):
    with scope("tenant-a"):
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            # bulk_create skips the model's own scope check: only the database stands in the way.
            MemoryEntry.all_scopes.bulk_create([MemoryEntry(scope="tenant-b", content="planted")])
        with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
            MemoryEntry.all_scopes.filter(scope="tenant-a").update(scope="tenant-b")
        assert MemoryEntry.all_scopes.filter(scope="tenant-b").update(content="overwritten") == 0
        assert MemoryEntry.all_scopes.filter(scope="tenant-b").delete()[0] == 0

    assert not MemoryEntry.all_scopes.filter(content="planted").exists()
    assert MemoryEntry.all_scopes.filter(scope="tenant-b").exclude(content="overwritten").exists()


@ROW_SECURITY_ON
def test_a_rolled_back_switch_is_made_again(two_tenants):
    # The switch made inside a savepoint is undone by its rollback: the connection must not trust it.
    with pytest.raises(RuntimeError), transaction.atomic(), scope("tenant-a"):
        assert current_user() == row_security.tenant_role()
        raise RuntimeError("rolled back")
    assert current_user() == "postgres"  # the rollback took the role back, and nothing was assumed

    with scope("tenant-a"):
        assert scopes_in_every_table() == {table: {"tenant-a"} for table in two_tenants}


@override_settings(AMODAL_DB_ROW_SECURITY=False)
def test_with_the_setting_off_nothing_switches(two_tenants):
    with scope("tenant-a"):
        assert current_user() == "postgres"
        assert all(scopes == {"tenant-a", "tenant-b"} for scopes in scopes_in_every_table().values())


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
@ROW_SECURITY_ON
def test_a_pooled_connection_does_not_carry_a_scope_to_its_next_user(installed):
    if connection.pool is None:
        pytest.skip("needs psycopg's pool (AMODAL_DB_POOL on)")
    fill_scope("tenant-a")
    fill_scope("tenant-b", label="Other")
    connection.close()

    with scope("tenant-a"):
        tenant_pid = backend_pid()
        assert {entry.scope for entry in MemoryEntry.all_scopes.all()} == {"tenant-a"}
    connection.close()  # back to the pool, still switched to tenant-a

    # Studio's next checkouts, one of which gets the same server connection back (the pool hands them out in
    # turn): each sees every scope.
    pids = []
    for _ in range(connection.pool.max_size + 1):
        pids.append(backend_pid())
        assert current_user() == "postgres"
        assert {entry.scope for entry in MemoryEntry.all_scopes.all()} == {"tenant-a", "tenant-b"}
        connection.close()
        if pids[-1] == tenant_pid:
            break
    assert tenant_pid in pids


@pytest.fixture
def switches(monkeypatch):
    """The scope switches (set_config statements) issued, which run beside Django's cursors."""
    made = []
    switch = row_security.switch_scope

    def counted(raw_connection, scope_id):
        ran = switch(raw_connection, scope_id)
        if ran:
            made.append(scope_id)
        return ran

    monkeypatch.setattr(row_security, "switch_scope", counted)
    return made


def one_message(chat, jwt_header, counter, switches, *, on: bool) -> tuple[list[str], list[str | None]]:
    """A tenant-a message right after a tenant-b one (so pooled connections are in another scope): its SQL
    statements (by shape) and its scope switches."""
    with override_settings(AMODAL_DB_ROW_SECURITY=on):
        session_id = send(chat, jwt_header("tenant-a"), "/say first")
        send(chat, jwt_header("tenant-b"), "/say other")
        before, switched = len(counter.statements), len(switches)
        send(chat, jwt_header("tenant-a"), '/tool memory {"action": "list"}', session_id)
        statements, made = [shape(sql) for sql in counter.statements[before:]], switches[switched:]
    with scope("tenant-a"):
        assert Message.objects.filter(session_id=session_id).count() == 5
    return statements, made


@pytest.mark.django_db(transaction=True)
def test_a_chat_message_end_to_end(installed, test_agent, chat, jwt_header, count_queries, switches):  # noqa: F811
    statements_off, switches_off = one_message(chat, jwt_header, count_queries, switches, on=False)
    statements_on, switches_on = one_message(chat, jwt_header, count_queries, switches, on=True)

    with scope("tenant-a"):
        assert UsageRecord.objects.count() == 6  # every model call recorded, in its scope, with the setting on too
    # The same statements on or off, plus one switch per connection checkout at most (DB_HANDOFFS).
    assert statements_on == statements_off
    assert switches_off == []
    assert switches_on and set(switches_on) == {"tenant-a"} and len(switches_on) <= DB_HANDOFFS, switches_on
    print(f"statements per message: {len(statements_off)} off, {len(statements_on)} + {len(switches_on)} switches on")


@ROW_SECURITY_ON
def test_the_lease_sweep_inside_a_message_still_frees_every_scopes_sessions(two_tenants):
    from datetime import timedelta

    from django.utils import timezone

    from agents.models import Session
    from agents.services import release_expired_leases

    expired = timezone.now() - timedelta(minutes=1)
    held = Session.all_scopes.filter(scope="tenant-b").update(lock_token="dead-worker", lock_expires_at=expired)
    with scope("tenant-a"):  # as agents.turn.lease runs it, inside a tenant-a message
        assert release_expired_leases() == held > 0
    assert not Session.all_scopes.filter(lock_token="dead-worker").exists()


# --- /health: a process whose row-level security cannot work says so ----------------------------------------


def health(client) -> tuple[int, str]:
    response = client.get("/health")
    return response.status_code, response.json()["row_security"]


@ROW_SECURITY_ON
@pytest.mark.django_db(transaction=True)
def test_health_is_503_when_the_role_is_missing(installed, client, caplog):
    assert health(client) == (200, "ok")
    with override_settings(AMODAL_DB_TENANT_ROLE="amodal_no_such_role"):
        assert health(client) == (503, "error")
    assert "row-level security is on but the role amodal_no_such_role does not exist: run `manage.py migrate`" in (
        caplog.text
    )


@ROW_SECURITY_ON
@pytest.mark.django_db(transaction=True)
def test_health_is_503_when_a_table_has_no_policy(installed, client, caplog):
    with connection.cursor() as cursor:
        cursor.execute(f"DROP POLICY {row_security.POLICY} ON agents_message")
    try:
        assert health(client) == (503, "error")
        assert f"1 table(s) have no {row_security.POLICY} policy for {row_security.tenant_role()} (agents_message)" in (
            caplog.text
        )
    finally:
        row_security.install(connection)
    assert health(client) == (200, "ok")


@override_settings(AMODAL_DB_ROW_SECURITY=False)
@pytest.mark.django_db(transaction=True)
def test_health_says_off_when_it_is_off(client):
    assert health(client) == (200, "off")
