"""The site as a whole: health, admin login, the OpenAPI schema, and settings that refuse unsafe setups."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

from agents.agent_folder import manifest_of
from core.agent_folder import current_agent

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_health_reports_agent_deploy_database_and_channel_layer(client):
    response = client.get("/health")
    assert response.status_code == 200
    agent = current_agent()
    assert response.json() == {
        "status": "ok",
        "agent": manifest_of(agent).name,
        "deploy_id": agent.deploy_id,
        "database": "ok",
        "channel_layer": "ok",
        # On by default with PostgreSQL, installed by the test database's migrate; SQLite has none.
        "row_security": "ok" if connection.vendor == "postgresql" else "off",
    }


@pytest.mark.django_db
def test_admin_login_page_is_served(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert b'name="username"' in response.content


@pytest.mark.django_db
def test_openapi_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert b"openapi" in response.content


def start_django(env_overrides: dict[str, str], code: str = "") -> subprocess.CompletedProcess:
    """`django.setup()` in a fresh process with these variables, then `code` (if any)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AMODAL_", "DEBUG", "SECRET_KEY"))}
    env.update({"DJANGO_SETTINGS_MODULE": "amodal_site.settings", "FINANCE_API_URL": "http://127.0.0.1:1"})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


PRODUCTION = {"SECRET_KEY": "s" * 50, "AMODAL_JWT_SECRET": "j" * 40, "AMODAL_CREDENTIALS_KEY": "k" * 44}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({**PRODUCTION, "AMODAL_AUTH": "open"}, "AMODAL_AUTH=open is for development only"),
        ({**PRODUCTION, "SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({**PRODUCTION, "AMODAL_JWT_SECRET": ""}, "AMODAL_JWT_SECRET must be set"),
        ({**PRODUCTION, "AMODAL_CREDENTIALS_KEY": ""}, "AMODAL_CREDENTIALS_KEY must be set"),
        ({**PRODUCTION, "AMODAL_AUTH": "maybe"}, "AMODAL_AUTH must be"),
        ({**PRODUCTION, "AMODAL_ALLOWED_ORIGINS": "*"}, "only with AMODAL_AUTH=open"),
        ({**PRODUCTION, "AMODAL_JWT_ALGORITHM": "none"}, "AMODAL_JWT_ALGORITHM must be"),
    ],
)
def test_production_settings_refuse_unsafe_configuration(overrides, message):
    result = start_django(overrides)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings_start_when_complete():
    result = start_django(PRODUCTION)
    assert result.returncode == 0, result.stderr


def test_a_bad_agent_folder_stops_start_up_with_a_clean_message(tmp_path):
    (tmp_path / "amodal.json").write_text('{"name": "x", "version": 1}')
    result = start_django({**PRODUCTION, "AMODAL_AGENT_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "amodal.json: version" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_openapi_schema_covers_every_json_endpoint(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in (
        "/chat/stream",
        "/chat",
        "/chat/sync",
        "/sessions/{session_id}/cancel",
        "/sessions/history",
        "/sessions/history/{session_id}",
        "/sessions/history/{session_id}/feedback",
        "/api/stores",
        "/api/stores/{name}",
        "/api/stores/{name}/{key}",
        "/api/memory",
        "/api/memory/{entry_id}",
        "/health",
    ):
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    feedback = schema["paths"]["/sessions/history/{session_id}/feedback"]["post"]
    assert set(feedback["responses"]) >= {"200", "400", "401", "404"}
    body = schema["components"]["schemas"][
        feedback["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    ]
    assert body["required"] == ["rating"]
    assert body["properties"]["rating"]["allOf"] == [{"$ref": "#/components/schemas/RatingEnum"}]
    assert schema["components"]["schemas"]["RatingEnum"]["enum"] == [1, -1]
    assert body["properties"]["comment"]["maxLength"] == 2000
    chat = schema["paths"]["/chat/stream"]["post"]
    assert set(chat["responses"]) >= {"200", "400", "401", "404", "409"}
    assert "budget_exceeded" in schema["paths"]["/chat/sync"]["post"]["responses"]["429"]["description"]


# --- PostgreSQL's connection options ------------------------------------------------------------------


POSTGRES = {**PRODUCTION, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/amodal"}
OPTIONS = "from django.conf import settings as s; print(s.DATABASES['default']['OPTIONS']['options'])"


@pytest.mark.parametrize(
    "value, options",
    [
        (None, "-c jit=off -c max_parallel_workers_per_gather=0"),
        ("2", "-c jit=off -c max_parallel_workers_per_gather=2"),
    ],
)
def test_parallel_query_is_off_unless_asked_for(value, options):
    env = {**POSTGRES, **({"AMODAL_DB_PARALLEL_WORKERS": value} if value else {})}
    result = start_django(env, code=OPTIONS)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == options


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_a_bad_parallel_workers_value_stops_start_up(value):
    result = start_django({**POSTGRES, "AMODAL_DB_PARALLEL_WORKERS": value})
    assert result.returncode != 0
    assert f"AMODAL_DB_PARALLEL_WORKERS must be a whole number of workers per query, not {value!r}." in result.stderr


# --- Row-level security (scoping.row_security) -------------------------------------------------------------

ROW_SECURITY = (
    "from django.conf import settings as s; print(s.AMODAL_DB_ROW_SECURITY, s.DATABASES['default']['ENGINE'])"
)


@pytest.mark.parametrize(
    "value, on", [(None, True), ("", True), ("0", False), ("off", False), ("1", True), ("yes", True)]
)
def test_row_security_is_on_on_postgresql_unless_turned_off(value, on):
    result = start_django(
        {**POSTGRES, **({"AMODAL_DB_ROW_SECURITY": value} if value is not None else {})}, code=ROW_SECURITY
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(on), "scoping.postgresql"]


@pytest.mark.parametrize("value", [None, "0"])
def test_row_security_is_off_on_sqlite(value):
    env = {**PRODUCTION, "DATABASE_URL": "sqlite:///unused.sqlite3"}
    result = start_django({**env, **({"AMODAL_DB_ROW_SECURITY": value} if value else {})}, code=ROW_SECURITY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "django.db.backends.sqlite3"]


TENANT_ROLE = "from django.conf import settings as s; print(s.AMODAL_DB_TENANT_ROLE)"


@pytest.mark.parametrize(
    "value, role", [(None, "amodal_tenant"), ("", "amodal_tenant"), ("acme_tenant_2", "acme_tenant_2")]
)
def test_the_tenant_role_name(value, role):
    result = start_django(
        {**POSTGRES, **({"AMODAL_DB_TENANT_ROLE": value} if value is not None else {})}, code=TENANT_ROLE
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == role


@pytest.mark.parametrize("value", ["Tenant", "2tenants", "tenant; DROP TABLE x", "t" * 64, "ténant"])
def test_a_bad_tenant_role_name_stops_start_up(value):
    result = start_django({**POSTGRES, "AMODAL_DB_TENANT_ROLE": value})
    assert result.returncode != 0
    assert "AMODAL_DB_TENANT_ROLE must be a PostgreSQL role name of lower-case letters, digits and underscores" in (
        result.stderr
    )
    assert repr(value) in result.stderr


@pytest.mark.parametrize("value", ["2", "enabled", "tru"])
def test_a_bad_row_security_value_stops_start_up(value):
    result = start_django({**POSTGRES, "AMODAL_DB_ROW_SECURITY": value})
    assert result.returncode != 0
    expected = f"AMODAL_DB_ROW_SECURITY must be on or off (1/0, true/false, yes/no, on/off), not {value!r}."
    assert expected in result.stderr


def test_row_security_on_sqlite_stops_start_up():
    result = start_django({**PRODUCTION, "DATABASE_URL": "sqlite:///unused.sqlite3", "AMODAL_DB_ROW_SECURITY": "1"})
    assert result.returncode != 0
    assert "AMODAL_DB_ROW_SECURITY needs PostgreSQL" in result.stderr
