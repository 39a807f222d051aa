"""CORS for browsers on the SaaS's own origins (SPEC §3 "Cross-origin use").

The CORS_* settings are derived from AMODAL_ALLOWED_ORIGINS by amodal_site/settings.py at import time, so
each configuration is computed by importing the real settings module in a subprocess with that
environment, then applied to this process with pytest-django's `settings` fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.e2e.live import REPO_ROOT

ALLOWED = "https://app.example.com"
SECOND = "https://admin.example.com:8443"
REFUSED = "https://evil.example.net"

CORS_PATHS = [
    "/chat/stream",
    "/chat",
    "/chat/sync",
    "/sessions/history",
    "/sessions/history/0b0e7a52-5e8f-4ad4-9d3c-2d3f7a1c9e11",
    "/sessions/history/0b0e7a52-5e8f-4ad4-9d3c-2d3f7a1c9e11/feedback",
    "/sessions/0b0e7a52-5e8f-4ad4-9d3c-2d3f7a1c9e11/cancel",
    "/api/stores",
    "/api/stores/preferences",
    "/api/stores/preferences/currency",
    "/api/memory",
    "/api/memory/12",
]
NOT_CORS_PATHS = ["/health", "/admin/", "/api/schema/", "/widget/demo/", "/studio/"]


def settings_from_env(**env: str) -> dict:
    """The CORS_* values the real settings module computes for this environment (or its error)."""
    cleared = (
        "AMODAL_ALLOWED_ORIGINS",
        "AMODAL_AUTH",
        "DJANGO_SETTINGS_MODULE",
        "DATABASE_URL",
        "AMODAL_DB_ROW_SECURITY",  # SQLite refuses it; a suite may run with it on for PostgreSQL
    )
    environment = {key: value for key, value in os.environ.items() if key not in cleared}
    environment.update(DEBUG="1", PYTHONPATH=str(REPO_ROOT), **env)
    code = (
        "import json, amodal_site.settings as s\n"
        "print(json.dumps({k: getattr(s, k) for k in dir(s) if k.startswith('CORS_')}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        return {"error": completed.stderr}
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def configured() -> dict:
    return settings_from_env(AMODAL_ALLOWED_ORIGINS=f"{ALLOWED}, {SECOND}/")


@pytest.fixture(scope="module")
def default_configuration() -> dict:
    return settings_from_env()


@pytest.fixture
def cors(settings, configured):
    """This process answers CORS as a server started with AMODAL_ALLOWED_ORIGINS=ALLOWED,SECOND."""
    for key, value in configured.items():
        setattr(settings, key, value)
    return settings


def preflight(client, path: str, origin: str, method: str = "POST"):
    return client.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def header_list(response, name: str) -> set[str]:
    return {item.strip().lower() for item in response.headers.get(name, "").split(",") if item.strip()}


# --- the settings block --------------------------------------------------------------------------------------


def test_settings_follow_amodal_allowed_origins(configured, default_configuration):
    assert configured["CORS_ALLOWED_ORIGINS"] == [ALLOWED, SECOND]
    assert configured["CORS_ALLOW_ALL_ORIGINS"] is False
    assert configured["CORS_ALLOW_CREDENTIALS"] is False
    assert configured["CORS_EXPOSE_HEADERS"] == ["X-Next-Cursor", "Retry-After"]
    assert default_configuration["CORS_ALLOWED_ORIGINS"] == []
    assert default_configuration["CORS_ALLOW_ALL_ORIGINS"] is False


def test_star_allows_every_origin_only_with_open_auth():
    opened = settings_from_env(AMODAL_ALLOWED_ORIGINS="*", AMODAL_AUTH="open")
    assert opened["CORS_ALLOW_ALL_ORIGINS"] is True and opened["CORS_ALLOWED_ORIGINS"] == []
    refused = settings_from_env(AMODAL_ALLOWED_ORIGINS="*")
    assert "only with AMODAL_AUTH=open" in refused["error"]


# --- preflight -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CORS_PATHS)
def test_preflight_from_an_allowed_origin_is_answered_without_auth(client, cors, path):
    response = preflight(client, path, ALLOWED)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert {"get", "post", "patch", "put", "delete"} <= header_list(response, "Access-Control-Allow-Methods")
    assert {"authorization", "content-type"} <= header_list(response, "Access-Control-Allow-Headers")
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "origin" in header_list(response, "Vary")


def test_preflight_for_every_allowed_method_and_the_second_origin(client, cors):
    for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        response = preflight(client, "/api/stores/preferences/currency", SECOND, method)
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == SECOND


@pytest.mark.parametrize("path", ["/chat/stream", "/sessions/history", "/api/memory"])
def test_preflight_from_another_origin_gets_no_allow_origin(client, cors, path):
    response = preflight(client, path, REFUSED)
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize("path", NOT_CORS_PATHS)
def test_paths_outside_the_api_answer_no_cors(client, cors, path):
    response = client.get(path, headers={"Origin": ALLOWED})
    assert "Access-Control-Allow-Origin" not in response.headers


# --- actual responses: errors and the event stream -----------------------------------------------------------


def test_allow_origin_on_a_401_json_error(client, cors):
    response = client.post("/chat/stream", data="{}", content_type="application/json", headers={"Origin": ALLOWED})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_required"
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED

    response = client.get("/sessions/history", headers={"Origin": ALLOWED, "Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.django_db(transaction=True)
def test_allow_origin_on_a_404_and_the_next_cursor_is_exposed(client, cors, test_agent, jwt_header, chat):
    headers = {**jwt_header("cors-scope"), "Origin": ALLOWED}
    for text in ("one", "two"):
        assert chat.stream({"message": f"/say {text}"}, headers).status == 200
    page = client.get("/sessions/history?limit=1", headers=headers)
    assert page.status_code == 200 and page.headers["X-Next-Cursor"]
    assert page.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "x-next-cursor" in header_list(page, "Access-Control-Expose-Headers")

    missing = client.get("/sessions/history/0b0e7a52-5e8f-4ad4-9d3c-2d3f7a1c9e11", headers=headers)
    assert missing.status_code == 404
    assert missing.headers["Access-Control-Allow-Origin"] == ALLOWED


@pytest.mark.django_db(transaction=True)
def test_allow_origin_on_the_event_stream(cors, test_agent, jwt_header, chat):
    result = chat.stream({"message": "/say streamed across origins"}, {**jwt_header("cors-scope"), "Origin": ALLOWED})
    headers = {name.lower(): value for name, value in result.headers.items()}
    assert result.status == 200
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["access-control-allow-origin"] == ALLOWED
    assert [event["type"] for event in result.events][0] == "init"
    assert result.events[-1]["type"] == "done"


@pytest.mark.django_db(transaction=True)
def test_refused_origin_gets_no_allow_origin_on_the_stream(cors, test_agent, jwt_header, chat):
    result = chat.stream({"message": "/say hi"}, {**jwt_header("cors-scope"), "Origin": REFUSED})
    assert result.status == 200  # the server answers; the browser withholds it from the page
    assert "access-control-allow-origin" not in {name.lower() for name in result.headers}


# --- the default: no AMODAL_ALLOWED_ORIGINS, no CORS ---------------------------------------------------------


def test_default_configuration_answers_no_cors(client, settings, default_configuration):
    for key, value in default_configuration.items():
        setattr(settings, key, value)
    assert "Access-Control-Allow-Origin" not in preflight(client, "/chat/stream", ALLOWED).headers
    response = client.post("/chat/stream", data="{}", content_type="application/json", headers={"Origin": ALLOWED})
    assert response.status_code == 401
    assert "Access-Control-Allow-Origin" not in response.headers


# --- the widget's own files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filename, content_type",
    [
        ("chat-widget.js", "text/javascript"),
        ("chat-widget-loader.js", "text/javascript"),
        ("chat-widget.css", "text/css"),
    ],
)
def test_widget_files_may_be_imported_from_any_origin(client, filename, content_type):
    response = client.get(f"/widget/amodal/{filename}", headers={"Origin": REFUSED})
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["ETag"]
    again = client.get(f"/widget/amodal/{filename}", headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304


def test_only_the_widget_files_are_served(client):
    assert client.get("/widget/amodal/..%2Fwidget_views.py").status_code == 404
    assert client.get("/widget/amodal/other.js").status_code == 404
