"""The chat stream events' JSON Schemas: published from the typed records the server builds the events
with (core.events), committed, served, in the OpenAPI schema, and true to what each constructor builds
(checked with an independent validator, jsonschema). tests/e2e/test_events_live.py checks them against
a real server's stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from jsonschema import Draft202012Validator

from core import events
from core.event_schemas import event_schemas, events_schema, openapi_components, schema_files

REPO = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO / "docs" / "schemas"
TYPES = [
    "init",
    "text_delta",
    "tool_call_start",
    "tool_call_result",
    "confirmation_required",
    "usage",
    "error",
    "done",
    "auth_ok",
]
MESSAGE_USAGE: events.MessageUsage = {
    "input_tokens": 12,
    "output_tokens": 3,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "total_tokens": 15,
    "cost_micros": None,
}


def committed(relative: str) -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / relative).read_text())


def union_validator() -> Draft202012Validator:
    return Draft202012Validator(committed("events.schema.json"))


def built_events() -> list[events.ChatEvent]:
    """One event of each type (two for tool_call_result), from the constructors the server uses."""
    return [
        events.init(session_id="0b7c5a52-5c55-4f0c-9d8e-3b8d1f0a4a11", scope_id="s", deploy_id="d1"),
        events.text_delta("Hello"),
        events.tool_call_start(tool_id="t1", tool_name="request", parameters={"api_key": "sk-1", "q": 1}),
        events.tool_call_result(tool_id="t1", status="success", duration_ms=4, output="[]"),
        events.tool_call_result(tool_id="t1", status="error", duration_ms=0, output="No such tool."),
        events.confirmation_required(
            tool_id="t2", connection="app", method="POST", endpoint="/transfers", reason="", params={"data": {}}
        ),
        events.usage(
            model="local", input_tokens=1, output_tokens=2, cache_read_tokens=0, cache_write_tokens=0, cost_micros=7
        ),
        events.error("rate_limited", "Too many requests; try again in 3 seconds."),
        events.done(reason="budget_exceeded", usage=MESSAGE_USAGE, message_id=None),
        events.auth_ok(),
    ]


def test_every_event_type_has_a_schema_and_the_union_holds_them_all():
    assert list(event_schemas()) == TYPES
    union = events_schema()
    assert set(union["discriminator"]["mapping"]) == set(TYPES)
    assert len(union["oneOf"]) == len(TYPES)
    assert union["discriminator"]["propertyName"] == "type"


def test_the_committed_schemas_are_up_to_date():
    call_command("export_event_schemas", "--check")  # raises CommandError when stale


def test_check_fails_on_a_stale_or_unknown_file_and_export_fixes_it(tmp_path):
    call_command("export_event_schemas", "--dir", str(tmp_path))
    (tmp_path / "events" / "done.schema.json").write_text("{}\n")
    (tmp_path / "events" / "old.schema.json").write_text("{}\n")

    with pytest.raises(
        CommandError, match=r"events/done\.schema\.json \(stale\), events/old\.schema\.json \(unknown\)"
    ):
        call_command("export_event_schemas", "--check", "--dir", str(tmp_path))

    call_command("export_event_schemas", "--dir", str(tmp_path))
    written = {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*.json")}
    assert written == set(schema_files())
    assert (tmp_path / "events" / "done.schema.json").read_text() == schema_files()["events/done.schema.json"]


def test_the_folder_schemas_command_leaves_the_events_schema_alone(tmp_path):
    call_command("export_event_schemas", "--dir", str(tmp_path))
    call_command("export_folder_schemas", "--dir", str(tmp_path))

    call_command("export_event_schemas", "--check", "--dir", str(tmp_path))
    call_command("export_folder_schemas", "--check", "--dir", str(tmp_path))


@pytest.mark.parametrize("kind", TYPES)
def test_a_schema_is_valid_json_schema_with_id_and_a_closed_record(kind):
    schema = committed(f"events/{kind}.schema.json")
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"/api/schemas/events/{kind}.schema.json"
    assert schema["title"] == kind and schema["description"]
    assert schema["properties"]["type"]["const"] == kind
    assert schema["additionalProperties"] is False
    assert {"type", "timestamp"} <= set(schema["required"])


def test_each_event_the_server_builds_is_valid():
    validator = union_validator()
    for item in built_events():
        assert [error.message for error in validator.iter_errors(item)] == [], item
        per_type = Draft202012Validator(committed(f"events/{item['type']}.schema.json"))
        assert list(per_type.iter_errors(item)) == [], item


def test_secrets_in_tool_arguments_are_redacted_by_the_constructors():
    start = events.tool_call_start(tool_id="t", tool_name="x", parameters={"api_key": "sk-1", "q": 1})
    confirm = events.confirmation_required(
        tool_id="t", connection="c", method="POST", endpoint="/", reason="", params={"data": {"password": "p"}}
    )
    assert start["parameters"] == {"api_key": "[REDACTED]", "q": 1}
    assert confirm["params"] == {"data": {"password": "[REDACTED]"}}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"type": "text_deltas"}, "type"),
        ({"extra": 1}, "extra"),
        ({"content": ""}, "content"),
        ({"content": 5}, "content"),
    ],
)
def test_a_broken_event_is_refused(change, where):
    item = {**events.text_delta("Hi"), **change}
    errors = list(union_validator().iter_errors(item))
    assert errors, f"{item} should break the schema ({where})"


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "success", "error": "x"},  # success carries result
        {"status": "error", "result": "x"},  # error carries error
        {"status": "success", "result": "x", "error": "y"},  # never both
        {"status": "done", "result": "x"},
        {"status": "success", "result": "x" * (events.MAX_RESULT_CHARS + 1)},
    ],
)
def test_a_tool_call_result_carries_result_or_error_as_its_status_says(fields):
    item = {"type": "tool_call_result", "tool_id": "t", "duration_ms": 1, "timestamp": events.now_iso(), **fields}
    assert list(union_validator().iter_errors(item))


@pytest.mark.parametrize(
    "change",
    [{"reason": "finished"}, {"usage": {**MESSAGE_USAGE, "total_tokens": -1}}, {"message_id": 5}, {"usage": {}}],
)
def test_a_broken_done_is_refused(change):
    item = {**events.done(reason="model_stop", usage=MESSAGE_USAGE, message_id="m"), **change}
    assert list(union_validator().iter_errors(item))


def test_an_error_code_is_snake_case_and_the_known_codes_are_listed():
    schema = committed("events/error.schema.json")["properties"]["code"]
    for code in ("rate_limited", "budget_exceeded", "service_unavailable", "max_turns", "session_busy"):
        assert code in schema["examples"] and code in schema["description"]
    assert list(union_validator().iter_errors({**events.error("Not Snake", "x")}))


def test_the_schemas_are_served_cacheable_without_auth(client):
    for path, relative in [
        ("/api/schemas/events.schema.json", "events.schema.json"),
        ("/api/schemas/events/done.schema.json", "events/done.schema.json"),
    ]:
        response = client.get(path)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
        assert response["Cache-Control"] == "public, max-age=3600"
        assert response.content.decode() == (SCHEMAS_DIR / relative).read_text()
        assert client.get(path, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_an_unknown_event_type_is_a_json_404(client):
    response = client.get("/api/schemas/events/nope.schema.json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "done.schema.json" in response.json()["error"]["message"]


def test_a_write_to_a_schema_url_is_refused(client):
    assert client.post("/api/schemas/events.schema.json").status_code == 405


@pytest.mark.django_db
def test_the_openapi_schema_types_the_event_streams_and_lists_the_schema_urls(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    for path in ("/chat/stream", "/chat"):
        ok = schema["paths"][path]["post"]["responses"]["200"]
        assert ok["content"]["text/event-stream"]["schema"] == {"$ref": "#/components/schemas/ChatEvent"}
        assert "/api/schemas/events.schema.json" in ok["description"]
    components = schema["components"]["schemas"]
    assert components["ChatEvent"] == openapi_components()["ChatEvent"]
    mapping = components["ChatEvent"]["discriminator"]["mapping"]
    assert all(components[ref.split("/")[-1]] for ref in mapping.values())
    assert components["DoneEvent"]["properties"]["message_id"]["nullable"] is True
    operation = schema["paths"]["/api/schemas/events/{event_type}.schema.json"]["get"]
    assert operation["parameters"][0]["schema"]["enum"] == TYPES
    assert "/api/schemas/events.schema.json" in schema["paths"]


@pytest.mark.django_db
def test_the_openapi_schema_stays_valid_openapi(client):
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(client.get("/api/schema/", HTTP_ACCEPT="application/json").json())


def test_the_openapi_components_use_the_3_0_dialect():
    text = json.dumps(openapi_components())
    for keyword in ('"const"', '"$defs"', '"examples"', '"type": "null"', '"$schema"'):
        assert keyword not in text, keyword
