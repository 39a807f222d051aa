"""PostgreSQL row-level security: a second lock behind the scoped manager (`AMODAL_DB_ROW_SECURITY`, on by default
on PostgreSQL).

The application connects as the tables' owner, which row-level security never restricts. With the setting on,
a connection used while a scope is active switches to the NOLOGIN role `amodal_tenant` (`AMODAL_DB_TENANT_ROLE`)
with `amodal.scope_id`
set to that scope, and every table of the scope data registry (scoping.scope_data) carries a policy that lets
that role see and write only rows whose scope column equals `amodal.scope_id`. So a query that bypasses the
scoped manager (`Model.all_scopes`, raw SQL) inside a scope still cannot read or write another scope's rows.
With no scope (Studio, admin, migrations, management commands) the connection stays the owner and sees all.

The switch is one `SELECT set_config(...)` statement, issued before a cursor is used only when the scope the
connection is in differs from the active one (scoping.postgresql.base). The scope a connection is in is kept on
the psycopg connection object itself, so a pooled connection carries it from one checkout to the next and the
next user's first statement switches it: a connection is never used under another scope than the active one.

`install(connection)` creates the role (unless it exists), grants it the application's tables and creates the
policies; it is idempotent and runs after every `migrate` when the setting is on (scoping.apps), so a new
registered table gets its policy with the migration that creates it. A database user that may not create or
join the role gets a RowSecurityNotInstallable naming the two statements a superuser runs once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

SCOPE_SETTING = "amodal.scope_id"
POLICY = "amodal_scope"

# What a connection's scope is recorded as: None is "the owner, no scope"; UNKNOWN after anything that may have
# undone a switch (a rollback), so the next statement sets it again whatever the active scope is.
UNKNOWN = object()
_STATE_ATTRIBUTE = "_amodal_row_scope"
# The value `amodal.scope_id` takes when no scope is active: not printable, so never a scope id
# (scoping.context.validate_scope_id), so a tenant-role query with it sees no row.
NO_SCOPE_VALUE = "\n"

_SWITCH = f"SELECT set_config('role', %s, false), set_config('{SCOPE_SETTING}', %s, false)"


class RowSecurityNotInstallable(CommandError):
    """`migrate` cannot install row-level security with this database user (a CommandError: said, no traceback)."""


def tenant_role() -> str:
    """The role a connection switches to inside a scope (AMODAL_DB_TENANT_ROLE, a plain lower-case name)."""
    return str(settings.AMODAL_DB_TENANT_ROLE)


def applied_scope(raw_connection: Any) -> object:
    """The scope `raw_connection` (a psycopg connection) runs under: a scope id, None (the owner) or UNKNOWN."""
    return getattr(raw_connection, _STATE_ATTRIBUTE, None)  # a new connection is the owner's


def forget_scope(raw_connection: Any) -> None:
    """After something that may have undone a switch (a rollback): the next cursor switches whatever the scope.
    A connection never switched is left alone (it is the owner's, and the setting may be off)."""
    if hasattr(raw_connection, _STATE_ATTRIBUTE):
        setattr(raw_connection, _STATE_ATTRIBUTE, UNKNOWN)


def switch_scope(raw_connection: Any, scope_id: str | None) -> bool:
    """Put `raw_connection` under `scope_id` (None: the owner) unless it already is; whether a statement ran.

    Fail closed: the state is UNKNOWN until the statement succeeded, so a failure is retried, never trusted."""
    if applied_scope(raw_connection) == scope_id:
        return False
    setattr(raw_connection, _STATE_ATTRIBUTE, UNKNOWN)
    if scope_id is None:
        raw_connection.execute(_SWITCH, ("none", NO_SCOPE_VALUE))
    else:
        raw_connection.execute(_SWITCH, (tenant_role(), scope_id))
    setattr(raw_connection, _STATE_ATTRIBUTE, scope_id)
    return True


def policy_tables() -> list[tuple[str, str]]:
    """(table, scope column) of every table of the scope data registry, each once, in registration order."""
    from scoping.scope_data import scope_data_kinds

    tables: dict[str, str] = {}
    for kind in scope_data_kinds():
        for model in kind.tables():
            column = model._meta.get_field(kind.scope_field).column  # type: ignore[union-attr]
            tables.setdefault(model._meta.db_table, str(column))
    return list(tables.items())


def install(connection: BaseDatabaseWrapper) -> list[str]:
    """Create the role unless it exists (once per cluster), grant it the schema's tables and sequences, and put
    the scope policy on every registered table. Idempotent; the tables it covers."""
    if connection.vendor != "postgresql":
        return []
    quote = connection.ops.quote_name
    role = quote(tenant_role())
    tables = policy_tables()
    with connection.cursor() as cursor:
        ensure_role(connection, cursor, tenant_role())
        cursor.execute("SELECT current_schema()")
        schema = quote(cursor.fetchone()[0])
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        # Every table, not only the registered ones: a scope's request also reads API keys, users, sessions, and
        # the usage triggers write the rollup tables (agents_usagedailytotal has no scope column) as the caller.
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
        for table, column in tables:
            name, scope_column = quote(table), quote(column)
            matches = f"{scope_column} = current_setting('{SCOPE_SETTING}', true)"
            cursor.execute(f"ALTER TABLE {name} ENABLE ROW LEVEL SECURITY")
            cursor.execute(f"DROP POLICY IF EXISTS {POLICY} ON {name}")
            cursor.execute(f"CREATE POLICY {POLICY} ON {name} TO {role} USING ({matches}) WITH CHECK ({matches})")
    return [table for table, _ in tables]


@dataclass(frozen=True)
class RoleState:
    """The database user and the tenant role, as the catalogue says: what ensure_role and /health read."""

    user: str
    exists: bool
    superuser: bool
    member: bool  # the user is a member of the role (false when it does not exist)

    @property
    def may_switch(self) -> bool:
        return self.exists and (self.superuser or self.member)


def role_state(cursor: Any, role: str) -> RoleState:
    cursor.execute(
        "SELECT u.rolname, r.oid IS NOT NULL, u.rolsuper, COALESCE(pg_has_role(u.oid, r.oid, 'MEMBER'), false) "
        "FROM pg_roles u LEFT JOIN pg_roles r ON r.rolname = %s WHERE u.rolname = current_user",
        [role],
    )
    return RoleState(*cursor.fetchone())


def ensure_role(connection: BaseDatabaseWrapper, cursor: Any, role: str) -> None:
    """The NOLOGIN tenant role exists and this database user may switch to it (a superuser may switch to any
    role; another user must be a member). Creates and grants only what is missing, so a role a DBA made and
    granted beforehand needs no CREATEROLE here."""
    state = role_state(cursor, role)
    quoted = connection.ops.quote_name(role)
    try:
        if not state.exists:
            # Roles are cluster-wide: several databases (pytest-xdist's workers) may create it at the same time.
            cursor.execute(
                f"""DO $$ BEGIN
                    CREATE ROLE {quoted} NOLOGIN NOSUPERUSER NOBYPASSRLS;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                END $$"""
            )
        if not state.superuser and not state.member:  # a role just created has no member yet
            cursor.execute(f"GRANT {quoted} TO {connection.ops.quote_name(state.user)}")
    except DatabaseError as exc:
        raise not_installable(connection, role, state, exc) from exc


def not_installable(
    connection: BaseDatabaseWrapper, role: str, state: RoleState, exc: DatabaseError
) -> RowSecurityNotInstallable:
    user = state.user
    grantee = user if re.fullmatch(r"[a-z_][a-z0-9_]*", user) else connection.ops.quote_name(user)
    create = "" if state.exists else f"CREATE ROLE {role} NOLOGIN; "
    diagnostic = getattr(getattr(exc.__cause__, "diag", None), "message_primary", None)
    reason = diagnostic or str(exc).strip().splitlines()[0]
    return RowSecurityNotInstallable(
        f"Row-level security (AMODAL_DB_ROW_SECURITY, on by default on PostgreSQL) needs the role {role}, and "
        f"the database user {user} may not {'join' if state.exists else 'create'} it ({reason}). "
        f"Run once as a superuser: {create}GRANT {role} TO {grantee}; then migrate again. "
        "Or turn it off with AMODAL_DB_ROW_SECURITY=0."
    )


def installation_problem(connection: BaseDatabaseWrapper) -> str:
    """What keeps row-level security from working on this database for this user ("" when nothing): the role
    missing or not this user's to switch to, or registered tables without the policy (`migrate` not run, or
    stopped before installing). Read-only: two catalogue queries, for /health."""
    role = tenant_role()
    with connection.cursor() as cursor:
        state = role_state(cursor, role)
        if not state.exists:
            return f"the role {role} does not exist"
        if not state.may_switch:
            return f"the database user {state.user} may not switch to the role {role}"
        cursor.execute(
            "SELECT tablename FROM pg_policies WHERE schemaname = current_schema() AND policyname = %s "
            "AND %s = ANY(roles)",
            [POLICY, role],
        )
        covered = {row[0] for row in cursor.fetchall()}
    missing = [table for table, _ in policy_tables() if table not in covered]
    if missing:
        return f"{len(missing)} table(s) have no {POLICY} policy for {role} ({', '.join(missing[:5])})"
    return ""
