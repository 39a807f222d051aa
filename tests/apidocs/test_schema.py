"""The OpenAPI schema at /api/schema/ as an integrator reads it: valid OpenAPI 3, every operation with a
summary, a description and examples, and every error it can answer documented in the one error shape."""

from __future__ import annotations

import re

import jsonschema
import pytest
from drf_spectacular.validation import validate_schema
from openapi_spec_validator import validate as validate_openapi

from amodal_site.schema import EVENT_SCHEMAS_DIR, EVENT_TYPES
from scoping.schema import ERROR_CODES

ERROR_REF = "#/components/schemas/ErrorResponse"
METHODS = ("get", "put", "post", "patch", "delete")
# Operations with a path parameter that cannot answer 404, each for a reason: they create what they name.
NO_404 = {
    ("put", "/api/scopes/{scope_id}"),  # sets a scope's label: a scope not seen yet is created
    ("put", "/api/credentials/{key}"),  # creates or replaces the credential
}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def ids(schema_ops: list[tuple[str, str, dict]]) -> list[str]:
    return [f"{method.upper()} {path}" for method, path, _ in schema_ops]


def authenticated(operation: dict) -> bool:
    return operation.get("security", [{"bearerAuth": []}]) != []


def test_the_schema_is_valid_openapi_3(schema):
    validate_openapi(schema)  # openapi-spec-validator: the OpenAPI 3.0 meta-schema and its rules
    validate_schema(schema)  # drf-spectacular's own validation path
    assert schema["openapi"].startswith("3.")


def test_every_json_endpoint_is_in_the_schema(schema):
    assert len(operations(schema)) >= 27  # 27 when written; more as endpoints are added
    for path in (
        "/sessions/history/{session_id}/feedback",
        "/api/scopes/{scope_id}",
        "/api/scopes/{scope_id}/export",
        "/sessions/{session_id}/cancel",
    ):
        assert path in schema["paths"], path
    assert set(schema["paths"]["/api/scopes/{scope_id}"]) >= {"get", "put", "delete"}


def test_every_operation_has_a_summary_a_description_and_a_unique_id(schema):
    seen = set()
    for method, path, operation in operations(schema):
        where = f"{method.upper()} {path}"
        assert operation.get("summary", "").strip(), f"{where}: no summary"
        assert len(operation.get("description", "").strip()) >= 40, f"{where}: no real description"
        # A class docstring leaking in as the description (the base view's) is no description at all.
        assert "handle_scoped" not in operation["description"], where
        assert operation["operationId"] not in seen, where
        seen.add(operation["operationId"])


def test_every_authenticated_operation_documents_401_429_and_503(schema):
    for method, path, operation in operations(schema):
        if not authenticated(operation):
            continue
        responses = operation["responses"]
        where = f"{method.upper()} {path}"
        assert "`authentication_required`" in responses["401"]["description"], where
        assert "`invalid_token`" in responses["401"]["description"], where
        assert "`rate_limited`" in responses["429"]["description"], where
        assert "`service_unavailable`" in responses["503"]["description"], where
        if "requestBody" in operation:
            assert "`request_too_large`" in responses["413"]["description"], where
            assert "`invalid_json`" in responses["400"]["description"], where


def test_every_operation_addressing_a_thing_documents_404(schema):
    for method, path, operation in operations(schema):
        if "{" not in path or (method, path) in NO_404:
            continue
        assert "404" in operation["responses"], f"{method.upper()} {path}: no 404"


def test_every_error_response_is_the_common_error_shape_with_an_example_of_each_code(schema):
    error_schema = {"$ref": ERROR_REF, "components": schema["components"]}
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path == "/health":  # its 503 is the health report, for load balancers
                continue
            where = f"{method.upper()} {path} {status}"
            media = response["content"]["application/json"]
            assert media["schema"] == {"$ref": ERROR_REF}, where
            codes = re.findall(r"`([a-z_]+)`", response["description"])
            assert codes, f"{where}: names no error code"
            bodies = [example["value"] for example in media.get("examples", {}).values()]
            if "example" in media:
                bodies.append(media["example"])
            for body in bodies:
                jsonschema.validate(body, error_schema)
            for code in codes:
                assert code in [body["error"]["code"] for body in bodies], f"{where}: no example of {code}"
                if code in ERROR_CODES:
                    assert ERROR_CODES[code].status == int(status), f"{where}: {code} is not a {status}"


def test_requests_and_answers_have_examples(schema):
    missing = []
    for method, path, operation in operations(schema):
        where = f"{method.upper()} {path}"
        for media in operation.get("requestBody", {}).get("content", {}).values():
            if media.get("example") is None and not media.get("examples"):
                missing.append(f"{where} request")
        for status, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                if media.get("example") is None and not media.get("examples"):
                    missing.append(f"{where} {status}")
    assert missing == []


def test_the_event_stream_names_every_event_type_and_where_their_schemas_are(schema):
    for path in ("/chat/stream", "/chat"):
        answer = schema["paths"][path]["post"]["responses"]["200"]
        assert list(answer["content"]) == ["text/event-stream"]
        for name in EVENT_TYPES:
            assert f"`{name}`" in answer["description"], name
        assert EVENT_SCHEMAS_DIR in answer["description"]
    assert set(EVENT_TYPES) == {
        "init",
        "text_delta",
        "tool_call_start",
        "tool_call_result",
        "confirmation_required",
        "usage",
        "error",
        "done",
    }


def test_the_scope_export_is_documented_as_json_lines(schema):
    answer = schema["paths"]["/api/scopes/{scope_id}/export"]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["application/x-ndjson"]


def test_every_negotiating_operation_documents_406_and_the_plain_views_do_not(schema):
    from amodal_site.schema import plain_paths

    plain = set(plain_paths())
    for method, path, operation in operations(schema):
        if not authenticated(operation):
            continue
        where = f"{method.upper()} {path}"
        if path in plain:  # Django views that answer SSE or JSON whatever Accept says
            assert "406" not in operation["responses"], where
        else:
            assert "`not_acceptable`" in operation["responses"]["406"]["description"], where


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/sessions/history", "/api/stores", "/api/memory", "/api/credentials"])
def test_an_accept_header_without_json_is_the_documented_406(client, jwt_header, api_key_header, test_agent, path):
    auth = api_key_header("tenant-a") if path == "/api/credentials" else jwt_header("tenant-a")
    headers = {**auth, "Accept": "image/png"}
    response = client.get(path, headers=headers)
    assert response.status_code == 406
    assert response.json() == {
        "error": {"code": "not_acceptable", "message": ERROR_CODES["not_acceptable"].example},
    }
