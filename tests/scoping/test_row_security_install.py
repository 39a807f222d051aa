"""Row-level security's install by `migrate` (scoping.apps post_migrate hook, scoping.row_security.install) as a
database user that is not a superuser, the way a managed PostgreSQL runs it: the tables' owner, without
CREATEROLE. The role missing, `migrate` stops with a said error naming the two statements a superuser runs once;
after them it installs, and a scoped query as that user sees only its scope.

Each test has a login role and a database of its own, and a tenant role name of its own
(AMODAL_DB_TENANT_ROLE), since roles are shared by the whole PostgreSQL cluster.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.live import base_env, postgres_admin, run_manage, session_database_url, session_uses_postgres

pytestmark = pytest.mark.skipif(not session_uses_postgres(), reason="row-level security is PostgreSQL's")

# In a fresh process as the restricted user: a session with a message in each of two scopes (written as the owner,
# no scope), then what the unscoped manager sees inside tenant-a and with no scope.
SEE_SCOPES = """
from agents.models import Message, Session
from scoping.context import scope
for scope_id in ("tenant-a", "tenant-b"):
    session = Session.all_scopes.create(scope=scope_id, deploy_id="deploy-1")
    Message.all_scopes.create(scope=scope_id, session=session, seq=0, role="user", text="hello")
with scope("tenant-a"):
    print("in tenant-a:", sorted(set(Message.all_scopes.values_list("scope", flat=True))))
print("no scope:", sorted(set(Message.all_scopes.values_list("scope", flat=True))))
"""


@dataclass
class RestrictedDatabase:
    url: str
    user: str
    tenant_role: str

    def env(self) -> dict[str, str]:
        return base_env(self.url, extra={"AMODAL_DB_ROW_SECURITY": "1", "AMODAL_DB_TENANT_ROLE": self.tenant_role})


@pytest.fixture
def restricted_database() -> Iterator[RestrictedDatabase]:
    suffix = secrets.token_hex(4)
    user, name, tenant_role = f"amodal_app_{suffix}", f"amodal_rls_{suffix}", f"amodal_tenant_{suffix}"
    postgres_admin(f"CREATE ROLE {user} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB")
    postgres_admin(f'CREATE DATABASE "{name}" OWNER {user}')
    parts = urlsplit(session_database_url())
    url = urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port or 5432}", path=f"/{name}"))
    try:
        yield RestrictedDatabase(url=url, user=user, tenant_role=tenant_role)
    finally:
        postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        postgres_admin(f"DROP ROLE IF EXISTS {tenant_role}")
        postgres_admin(f"DROP ROLE IF EXISTS {user}")


def test_migrate_without_createrole_says_what_a_superuser_runs_then_installs(restricted_database):
    database = restricted_database
    refused = run_manage(["migrate", "--noinput"], database.env(), check=False)
    assert refused.returncode == 1, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr
    assert (
        "RowSecurityNotInstallable: Row-level security (AMODAL_DB_ROW_SECURITY, on by default on PostgreSQL) "
        f"needs the role {database.tenant_role}, and the database user {database.user} may not create it"
    ) in refused.stderr
    fix = f"Run once as a superuser: CREATE ROLE {database.tenant_role} NOLOGIN; GRANT {database.tenant_role} TO "
    assert fix + f"{database.user}; then migrate again. Or turn it off with AMODAL_DB_ROW_SECURITY=0." in refused.stderr

    # What the message says, as a superuser; then the same migrate installs it.
    postgres_admin(f"CREATE ROLE {database.tenant_role} NOLOGIN")
    postgres_admin(f"GRANT {database.tenant_role} TO {database.user}")
    run_manage(["migrate", "--noinput"], database.env())
    run_manage(["migrate", "--noinput"], database.env())  # idempotent: nothing to create or grant again

    seen = run_manage(["shell", "--no-imports", "-c", SEE_SCOPES], database.env())
    assert seen.stdout.splitlines() == ["in tenant-a: ['tenant-a']", "no scope: ['tenant-a', 'tenant-b']"]


def test_a_role_that_exists_but_is_not_granted_is_said_too(restricted_database):
    database = restricted_database
    postgres_admin(f"CREATE ROLE {database.tenant_role} NOLOGIN")
    refused = run_manage(["migrate", "--noinput"], database.env(), check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"needs the role {database.tenant_role}, and the database user {database.user} may not join it" in (
        refused.stderr
    )
    assert f"Run once as a superuser: GRANT {database.tenant_role} TO {database.user}; then migrate again." in (
        refused.stderr
    )


def test_with_row_security_off_migrate_installs_nothing(restricted_database):
    database = restricted_database
    run_manage(["migrate", "--noinput"], {**database.env(), "AMODAL_DB_ROW_SECURITY": "0"})
    import psycopg

    with psycopg.connect(database.url) as connection:
        policies = connection.execute("SELECT count(*) FROM pg_policies").fetchone()
        role = connection.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [database.tenant_role])
        assert policies == (0,) and role.fetchone() == (0,)
