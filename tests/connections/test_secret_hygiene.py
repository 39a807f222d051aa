"""Secrets never appear in the prompt, in events, in saved rows or in logs (SPEC §4), even when the API
echoes the request (headers, query string) back into its answer."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from django.apps import apps
from django.db import connection
from django.test import override_settings

from agents.models import Message, Session
from agents.runtime.providers.local import ScriptedTurn, scripted_turns
from connections.models import ScopedCredential
from scoping.context import scope

BEARER_SECRET = "crm-Sc0ped-Bearer-Secret-7f3a9c"
BASIC_USER = "legacy-service-user"
BASIC_PASSWORD = "Legacy-Pa55word-e1d2c3"
QUERY_SECRET = "metrics+key/with=reserved&chars-91b"
HEADER_SECRET = 'vault-"quoted"\\back-slashed-5e6f'
OTHER_SCOPE_SECRET = "crm-token-of-tenant-b-0a0b0c"
ANTHROPIC_KEY = "sk-ant-api03-" + "Xy7" * 30
USER_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTEyMyIsInNjb3BlIjoiYWRtaW4ifQ."
    "c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1mb3ItdGVzdHM"
)
BASIC_PAIR = base64.b64encode(f"{BASIC_USER}:{BASIC_PASSWORD}".encode()).decode()


def forms(secret: str) -> set[str]:
    """The secret and the ways it could be written down: base64, URL-encoded, JSON-escaped, repr()."""
    variants = {
        secret,
        base64.b64encode(secret.encode()).decode(),
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
    }
    return {variant for variant in variants if len(variant) >= 6}


SECRETS = [BEARER_SECRET, BASIC_USER, BASIC_PASSWORD, QUERY_SECRET, HEADER_SECRET, OTHER_SCOPE_SECRET, BASIC_PAIR]
FORBIDDEN = sorted({variant for secret in SECRETS for variant in forms(secret)}, key=len, reverse=True)


def leaks(text: str, forbidden: list[str] = FORBIDDEN) -> list[str]:
    return [variant for variant in forbidden if variant in text]


@pytest.fixture
def all_logs(caplog) -> Iterator[pytest.LogCaptureFixture]:
    """caplog at DEBUG for every logger, including the ones that do not propagate to the root."""
    loggers = [logging.getLogger(), *(logging.getLogger(name) for name in list(logging.root.manager.loggerDict))]
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    attached = []
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if not logger.propagate:
            logger.addHandler(caplog.handler)
            attached.append(logger)
    caplog.handler.setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled
        for logger in attached:
            logger.removeHandler(caplog.handler)


def log_text(caplog) -> str:
    lines = []
    for record in caplog.records:
        lines.append(record.getMessage())
        if record.exc_info:
            lines.append(logging.Formatter().formatException(record.exc_info))
    return "\n".join(lines)


def database_text() -> str:
    """Every text-like value of every row of every model, as str() and as JSON."""
    chunks = []
    for model in apps.get_models():
        if not model._meta.managed:
            continue  # no table (e.g. a permissions-only model)
        manager = model._base_manager
        for row in manager.all():
            for field in model._meta.concrete_fields:
                value = field.value_from_object(row)
                if value is None:
                    continue
                chunks.append(str(value))
                if isinstance(value, dict | list):
                    chunks.append(json.dumps(value, ensure_ascii=False))
    return "\n".join(chunks)


def raw_table_text() -> str:
    """The same through plain SQL, so no model code (e.g. a decrypting field) stands in between."""
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            chunks += [repr(row) for row in cursor.fetchall()]
    return "\n".join(chunks)


def store(scope_id: str, key: str, value: str) -> None:
    with scope(scope_id):
        credential = ScopedCredential(key=key)
        credential.set_value(value)
        credential.save()


@pytest.fixture
def agent(make_agent, api, monkeypatch):
    monkeypatch.setenv("LEGACY_USER", BASIC_USER)
    monkeypatch.setenv("LEGACY_PASSWORD", BASIC_PASSWORD)
    for path in ["/echo", "/api/echo"]:
        api.route(path, echo=True)
    return make_agent(
        {
            "crm": {"baseUrl": api.base_url, "auth": {"type": "bearer", "token": "scope:CRM_TOKEN"}},
            "legacy": {
                "baseUrl": api.base_url,
                "auth": {"type": "basic", "username": "env:LEGACY_USER", "password": "env:LEGACY_PASSWORD"},
            },
            "metrics": {
                "baseUrl": api.url("/api"),
                "auth": {"type": "query", "param": "key", "token": "scope:METRICS"},
            },
            "vault": {"baseUrl": api.base_url, "auth": {"type": "header", "header": "X-Vault", "token": "scope:VAULT"}},
        }
    )


def echo(connection_name: str) -> dict:
    return {"connection": connection_name, "method": "GET", "endpoint": "/echo", "params": {"q": "1"}}


@pytest.mark.django_db(transaction=True)
def test_no_secret_reaches_the_model_the_stream_the_database_or_the_logs(agent, api, chat, jwt_header, all_logs):
    store("tenant-a", "CRM_TOKEN", BEARER_SECRET)
    store("tenant-a", "METRICS", QUERY_SECRET)
    store("tenant-a", "VAULT", HEADER_SECRET)
    store("tenant-b", "CRM_TOKEN", OTHER_SCOPE_SECRET)
    headers = jwt_header("tenant-a", {"tenant_id": "tenant-a"})
    frames: list[str] = []
    session_id = None
    with override_settings(DEBUG=True):  # also lets django.db.backends log every SQL statement
        for name in ["crm", "legacy", "metrics", "vault"]:
            turns = (ScriptedTurn(tool_calls=(("request", echo(name)),)), ScriptedTurn(text="done"))
            with scripted_turns(*turns) as script:
                body = {"message": f"call {name}", **({"session_id": session_id} if session_id else {})}
                response = chat.stream(body, headers)
            assert response.status == 200
            session_id = response.of_type("init")[0]["session_id"]
            frames += response.frames
            (result,) = response.of_type("tool_call_result")
            assert result["status"] == "success", result
            # What the model gets back: the echoed request with every secret replaced.
            tool_result = script.requests[1].messages[-1]["content"][0]
            assert tool_result["type"] == "tool_result"
            model_view = tool_result["content"]
            assert model_view == result["result"]
            assert leaks(model_view) == [], (name, model_view)
            assert "[REDACTED]" in model_view
            for request in script.requests:
                assert leaks(request.system + json.dumps(request.messages)) == []
            echoed = json.loads(model_view)["data"]
            if name == "crm":
                assert echoed["headers"]["Authorization"] == "Bearer [REDACTED]"
            if name == "legacy":
                assert echoed["headers"]["Authorization"] == "Basic [REDACTED]"
            if name == "vault":
                assert echoed["headers"]["X-Vault"] == "[REDACTED]"
            if name == "metrics":
                assert "[REDACTED]" in echoed["target"]
    # The API did receive the real values (so the test would notice a scrubber that ate the request).
    sent = api.all_text()
    assert f"Bearer {BEARER_SECRET}" in sent and f"Basic {BASIC_PAIR}" in sent
    assert quote_plus(QUERY_SECRET) in sent and HEADER_SECRET in sent
    assert OTHER_SCOPE_SECRET not in sent

    assert leaks("\n".join(frames)) == []
    assert leaks(database_text()) == []
    assert leaks(raw_table_text()) == []
    assert leaks(log_text(all_logs)) == []
    # Logging was captured, the HTTP client's request lines (with their query strings) included.
    assert any(record.name == "connections.tools" for record in all_logs.records)
    assert any(record.name.startswith("urllib3") and "/api/echo?" in record.getMessage() for record in all_logs.records)


@pytest.mark.django_db(transaction=True)
def test_failed_calls_do_not_leak_either(make_agent, api, chat, jwt_header, all_logs):
    """Errors (unreachable host, line breaks in a value, redirects) never quote the credential."""
    store("tenant-a", "CRM_TOKEN", BEARER_SECRET)
    store("tenant-a", "BROKEN", BEARER_SECRET + "\r\nX-Injected: 1")
    api.redirect("/go", "http://127.0.0.1:1/elsewhere")
    make_agent(
        {
            "crm": {"baseUrl": api.base_url, "auth": {"type": "bearer", "token": "scope:CRM_TOKEN"}},
            "down": {
                "baseUrl": "http://127.0.0.1:1",
                "timeoutSeconds": 2,
                "auth": {"type": "query", "param": "key", "token": "scope:CRM_TOKEN"},
            },
            "broken": {"baseUrl": api.base_url, "auth": {"type": "api_key", "token": "scope:BROKEN"}},
        }
    )
    calls = [
        ("request", {"connection": "down", "method": "GET", "endpoint": "/x"}),
        ("request", {"connection": "broken", "method": "GET", "endpoint": "/x"}),
        ("request", {"connection": "crm", "method": "GET", "endpoint": "/go"}),
    ]
    with scripted_turns(ScriptedTurn(tool_calls=tuple(calls))):
        response = chat.stream({"message": "try them"}, jwt_header("tenant-a"))
    assert [item["status"] for item in response.of_type("tool_call_result")] == ["error"] * 3
    assert leaks("\n".join(response.frames)) == []
    assert leaks(database_text()) == []
    assert leaks(log_text(all_logs)) == []


@pytest.mark.django_db(transaction=True)
def test_a_token_shaped_user_message_is_saved_scrubbed(agent, chat, jwt_header):
    message = f"my key is {ANTHROPIC_KEY} and my token is {USER_JWT}, please keep them"
    response = chat.stream({"message": "hello"}, jwt_header("tenant-a"))
    session_id = response.of_type("init")[0]["session_id"]
    chat.stream({"message": message, "session_id": session_id}, jwt_header("tenant-a"))
    with scope("tenant-a"):
        texts = [row.text for row in Message.objects.filter(session_id=session_id, role="user").order_by("seq")]
    assert texts[0] == "hello"
    assert ANTHROPIC_KEY not in texts[1] and USER_JWT not in texts[1]
    assert texts[1] == "my key is [REDACTED] and my token is [REDACTED], please keep them"
    assert leaks(database_text(), [ANTHROPIC_KEY, USER_JWT, ANTHROPIC_KEY[:30]]) == []


@pytest.mark.django_db(transaction=True)
def test_a_token_in_the_first_message_does_not_end_up_in_the_session_title(agent, chat, jwt_header):
    response = chat.stream({"message": f"here is {ANTHROPIC_KEY}"}, jwt_header("tenant-a"))
    session_id = response.of_type("init")[0]["session_id"]
    session = Session.all_scopes.get(pk=session_id)
    assert ANTHROPIC_KEY[:30] not in session.title
    assert leaks(database_text(), [ANTHROPIC_KEY[:30]]) == []
