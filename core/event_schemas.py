"""The JSON Schema of every chat stream event, from the typed records the server builds them with
(core.events), so the published contract and what is sent cannot drift.

`event_schemas()` is one schema per event type, `events_schema()` all of them as one `oneOf` told apart
by `type` (self-contained: each event type is in its `$defs`). They are committed under
`docs/schemas/events/<type>.schema.json` and `docs/schemas/events.schema.json`
(`manage.py export_event_schemas`, `--check` fails when they are stale), served at
`/api/schemas/events/<type>.schema.json` and `/api/schemas/events.schema.json`, and referenced from the
OpenAPI schema's event-stream responses. `$id`s are paths relative to the server that serves them.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing
from functools import cache
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import condition, require_safe
from pydantic import Field, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from core.errors import error_response
from core.events import ChatEvent

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
EVENTS_PATH = "/api/schemas/events.schema.json"
EVENT_PATH = "/api/schemas/events/{type}.schema.json"
EVENTS_FILE = "events.schema.json"  # under docs/schemas/, beside the per-type folder events/
CACHE_SECONDS = 3600


class EventSchemaGenerator(GenerateJsonSchema):
    """Pydantic's JSON Schema without a title on every property (the JSON name says it already), and
    docstring line breaks inside a paragraph joined (tools show descriptions as running text)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def generate(self, schema: core_schema.CoreSchema, mode: Any = "validation") -> JsonSchemaValue:
        result: JsonSchemaValue = _joined(super().generate(schema, mode))
        return result


def _joined(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: re.sub(r"(?<!\n)\n(?!\n)", " ", item)
            if key == "description" and isinstance(item, str)
            else _joined(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_joined(item) for item in value]
    return value


def event_records() -> dict[str, type]:
    """Event type ("init", "done", ...) -> its TypedDict, in the order of core.events.ChatEvent."""
    records: dict[str, type] = {}
    for record in typing.get_args(ChatEvent):
        (kind,) = typing.get_args(typing.get_type_hints(record)["type"])
        records[kind] = record
    return records


def _schema(adapted: Any, schema_id: str, title: str) -> dict[str, Any]:
    schema = TypeAdapter(adapted).json_schema(schema_generator=EventSchemaGenerator)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": schema_id,
        "title": title,
        **{k: v for k, v in schema.items() if k != "title"},
    }


def event_schemas() -> dict[str, dict[str, Any]]:
    """Event type -> the JSON Schema of that event."""
    return {kind: _schema(record, EVENT_PATH.format(type=kind), kind) for kind, record in event_records().items()}


def events_schema() -> dict[str, Any]:
    """Any event of the stream: a `oneOf` of every event type, with an OpenAPI-style `discriminator`."""
    schema = _schema(Annotated[ChatEvent, Field(discriminator="type")], EVENTS_PATH, "ChatEvent")
    schema["description"] = (
        "One event of POST /chat/stream (one `data: <json>` frame each) or of the WebSocket /ws/chat (one "
        "message each); `type` tells which. `init` is first, `done` last; `auth_ok` is WebSocket only."
    )
    return schema


def schema_text(schema: dict[str, Any]) -> str:
    """The schema as committed and served: stable key order from the records, two-space indent."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def schema_files() -> dict[str, str]:
    """Path under docs/schemas/ -> its text: `events.schema.json` and `events/<type>.schema.json`."""
    files = {EVENTS_FILE: schema_text(events_schema())}
    files.update({f"events/{kind}.schema.json": schema_text(schema) for kind, schema in event_schemas().items()})
    return files


@cache
def _served() -> dict[str, tuple[str, str]]:
    """Path under /api/schemas/ -> (text, ETag), built once per process (the records do not change)."""
    return {path: (text, hashlib.sha256(text.encode()).hexdigest()[:16]) for path, text in schema_files().items()}


def _etag(request: HttpRequest, type: str | None = None) -> str | None:
    served = _served().get(_path(type))
    return None if served is None else f'"{served[1]}"'


def _path(type: str | None) -> str:
    return EVENTS_FILE if type is None else f"events/{type}.schema.json"


@require_safe
@condition(etag_func=_etag)
def event_schema_view(request: HttpRequest, type: str | None = None) -> HttpResponse:
    """GET /api/schemas/events.schema.json and /api/schemas/events/<type>.schema.json: public (they
    describe the protocol, never a tenant) and cacheable."""
    served = _served().get(_path(type))
    if served is None:
        known = ", ".join(f"{kind}.schema.json" for kind in event_records())
        return error_response(404, "not_found", f"No event type {type!r}; there are {known}.")
    response = HttpResponse(served[0], content_type="application/json")
    response["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    return response


# --- In the OpenAPI schema (3.0.3) ---------------------------------------------------------------------

OPENAPI_REF = "#/components/schemas/"


def openapi_components() -> dict[str, dict[str, Any]]:
    """The events as OpenAPI 3.0 component schemas (`ChatEvent` and one per event type): the same
    schemas in that older dialect (`nullable` for a null alternative, `enum` for `const`, one `example`)."""
    schema = events_schema()
    components = {name: _openapi(item) for name, item in schema.pop("$defs").items()}
    for key in ("$schema", "$id", "title"):
        schema.pop(key)
    components["ChatEvent"] = _openapi(schema)
    return components


def _openapi(value: Any) -> Any:
    if isinstance(value, list):
        return [_openapi(item) for item in value]
    if not isinstance(value, dict):
        return (
            value.replace("#/$defs/", OPENAPI_REF) if isinstance(value, str) and value.startswith("#/$defs/") else value
        )
    out = {key: _openapi(item) for key, item in value.items() if key not in ("const", "examples", "anyOf")}
    if "const" in value:
        out["enum"] = [value["const"]]
    if value.get("examples"):
        out["example"] = value["examples"][0]
    if "anyOf" in value:
        options = [option for option in value["anyOf"] if option != {"type": "null"}]
        if len(options) == 1 and len(options) < len(value["anyOf"]):
            out.update({**_openapi(options[0]), "nullable": True})
        else:
            out["anyOf"] = _openapi(value["anyOf"])
    return out
