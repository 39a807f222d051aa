"""The agent folder's JSON Schemas: published from the folder models, committed, served, and true to the
example agent (checked with an independent validator, jsonschema)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from jsonschema import Draft202012Validator

from core.agent_folder import load_agent_folder
from core.folder_schemas import folder_schemas, schema_text
from tests.conftest import write_agent_folder

REPO = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO / "docs" / "schemas"
EXAMPLE = REPO / "examples" / "finance-agent"
KINDS = ["amodal", "spec", "access", "store", "scopes"]
EXAMPLE_FILES = [
    ("amodal", "amodal.json"),
    ("spec", "connections/app-api/spec.json"),
    ("access", "connections/app-api/access.json"),
    ("store", "stores/preferences.json"),
    ("store", "stores/categories.json"),
    ("scopes", ".amodal/scopes.json"),
]


def committed(name: str) -> dict:
    return json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text())


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(committed(name))


def test_every_file_kind_has_a_schema():
    assert sorted(folder_schemas()) == sorted(KINDS)


def test_the_committed_schemas_are_up_to_date():
    call_command("export_folder_schemas", "--check")  # raises CommandError when stale


def test_check_fails_on_a_stale_or_unknown_file_and_export_fixes_it(tmp_path):
    call_command("export_folder_schemas", "--dir", str(tmp_path))
    (tmp_path / "spec.schema.json").write_text("{}\n")
    (tmp_path / "old.schema.json").write_text("{}\n")

    with pytest.raises(CommandError, match=r"spec\.schema\.json \(stale\), old\.schema\.json \(unknown\)"):
        call_command("export_folder_schemas", "--check", "--dir", str(tmp_path))

    call_command("export_folder_schemas", "--dir", str(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"{name}.schema.json" for name in KINDS)
    assert (tmp_path / "spec.schema.json").read_text() == schema_text(folder_schemas()["spec"])


@pytest.mark.parametrize("name", KINDS)
def test_a_schema_is_valid_json_schema_with_id_title_and_descriptions(name):
    schema = committed(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"/api/schemas/agent-folder/{name}.schema.json"
    assert schema["title"] and schema["description"]
    objects = [schema, *schema.get("$defs", {}).values()]
    for properties in (obj.get("properties", {}) for obj in objects):
        for key, prop in properties.items():
            assert prop.get("description"), f"{name}: property {key} has no description"


@pytest.mark.parametrize(("name", "relative"), EXAMPLE_FILES)
def test_the_example_agent_validates_against_the_schemas(name, relative):
    errors = [error.message for error in validator(name).iter_errors(json.loads((EXAMPLE / relative).read_text()))]
    assert errors == []


@pytest.mark.parametrize(
    ("name", "document"),
    [
        ("amodal", {"name": "a", "version": "1", "models": {"main": {"provider": "openai"}}}),
        ("amodal", {"name": "a", "version": "1", "models": {"main": {"provider": "local"}}, "agent": {"maxTurns": 0}}),
        ("amodal", {"name": "a", "models": {"main": {"provider": "local"}}}),
        ("spec", {"baseUrl": "api.example.com"}),
        ("spec", {"baseUrl": "https://api.example.com", "auth": {"type": "oauth"}}),
        ("access", {"endpoints": {"POST /x": {"confirm": "sometimes"}}}),
        ("access", {"endpoints": {"FETCH /x": {"confirm": True}}}),
        ("store", {"name": "Notes", "entity": {"name": "N", "key": "{id}", "schema": {"id": {"type": "string"}}}}),
        ("store", {"name": "n", "entity": {"name": "N", "key": "{id}", "schema": {"id": {"type": "money"}}}}),
        ("store", {"name": "n", "entity": {"name": "N", "key": "{id}", "schema": {"id": {"type": "string", "x": 1}}}}),
        ("scopes", {"tenant": {"credentials": {"KEY": 42}}}),
    ],
)
def test_the_schemas_refuse_what_the_loader_refuses(name, document):
    assert list(validator(name).iter_errors(document))


def test_an_env_reference_may_stand_for_any_value():
    manifest = {
        "name": "env:AGENT_NAME",
        "version": "1",
        "models": {"main": {"provider": "env:PROVIDER"}},
        "agent": {"maxTurns": "env:MAX_TURNS"},
        "scope": {"requireScope": "env:REQUIRE_SCOPE"},
    }
    assert list(validator("amodal").iter_errors(manifest)) == []


def test_a_schema_reference_in_a_file_is_allowed_by_the_loader_and_the_schemas(tmp_path):
    folder = write_agent_folder(
        tmp_path / "agent",
        amodal={"$schema": "/api/schemas/agent-folder/amodal.schema.json"},
        files={
            "stores/notes.json": {
                "$schema": "/api/schemas/agent-folder/store.schema.json",
                "name": "notes",
                "entity": {"name": "Note", "key": "{id}", "schema": {"id": {"type": "string"}}},
            }
        },
    )

    load_agent_folder(folder)
    for name, relative in [("amodal", "amodal.json"), ("store", "stores/notes.json")]:
        assert list(validator(name).iter_errors(json.loads((folder / relative).read_text()))) == []


def test_the_schema_url_serves_the_committed_json(client):
    response = client.get("/api/schemas/agent-folder/spec.schema.json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "public, max-age=3600"
    assert response.content.decode() == (SCHEMAS_DIR / "spec.schema.json").read_text()
    again = client.get("/api/schemas/agent-folder/spec.schema.json", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304


def test_an_unknown_schema_is_a_json_404(client):
    response = client.get("/api/schemas/agent-folder/nope.schema.json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert "amodal.schema.json" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_the_schema_urls_are_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()

    operation = schema["paths"]["/api/schemas/agent-folder/{name}.schema.json"]["get"]
    assert operation["parameters"][0]["schema"]["enum"] == KINDS
