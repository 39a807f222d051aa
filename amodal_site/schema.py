"""OpenAPI additions: the chat endpoints, which are plain async Django views
(DRF views would buffer the stream), so drf-spectacular cannot introspect them."""

from __future__ import annotations

from core.agent_folder import folder_file_kinds
from core.event_schemas import EVENT_PATH, EVENTS_PATH, event_records, openapi_components
from scoping.schema import BearerScheme

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]

ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}

CHAT_REQUEST = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "minLength": 1, "maxLength": 100_000},
        "session_id": {"type": "string", "format": "uuid", "nullable": True},
        "scope_id": {"type": "string", "maxLength": 255, "description": "Ignored when the JWT has a scope."},
        "context": {"type": "object", "additionalProperties": {"type": "string"}},
        "model": {
            "type": "object",
            "description": "API-key callers only.",
            "properties": {"provider": {"type": "string", "enum": ["anthropic", "local"]}, "model": {"type": "string"}},
        },
    },
    "required": ["message"],
}

USAGE = {
    "type": "object",
    "properties": {
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "cache_read_tokens": {"type": "integer"},
        "cache_write_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "cost_micros": {"type": "integer", "nullable": True},
    },
}

ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
CHAT_ERRORS = {
    str(status): {"description": description, "content": ERROR_CONTENT}
    for status, description in [
        (400, "validation_error, invalid_json, invalid_scope or scope_required"),
        (401, "authentication_required or invalid_token"),
        (403, "scope_forbidden or model_override_forbidden"),
        (404, "session_not_found (also another scope's session)"),
        (409, "session_busy"),
        (413, "request_too_large"),
        (503, "service_unavailable (database or channel layer unreachable; see Retry-After)"),
    ]
}


def chat_operation(operation_id: str, summary: str, responses: dict) -> dict:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["chat"],
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}},
            },
            "responses": {**responses, **CHAT_ERRORS},
        }
    }


STREAM_RESPONSE = {
    "200": {
        "description": "Server-sent events, one `data: <json>` frame per event: init, text_delta, "
        "tool_call_start, tool_call_result, confirmation_required, usage, error, done (last).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
}


def add_chat_endpoints(result, generator, request, public):
    """A drf-spectacular postprocessing hook."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update({"Error": ERROR, "ChatRequest": CHAT_REQUEST, "Usage": USAGE})
    result["components"].setdefault("securitySchemes", {})["bearerAuth"] = BearerScheme.scheme
    paths = result.setdefault("paths", {})
    paths["/chat/stream"] = chat_operation("chat_stream", "Send a message; stream the answer", STREAM_RESPONSE)
    paths["/chat"] = chat_operation("chat", "Same as /chat/stream", STREAM_RESPONSE)
    paths["/chat/sync"] = chat_operation(
        "chat_sync",
        "Send a message; get the whole answer",
        {
            "200": {
                "description": "The answer",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "session_id": {"type": "string", "format": "uuid"},
                                "response": {"type": "string"},
                                "tool_calls": {"type": "array", "items": {"type": "object"}},
                                "usage": {"$ref": "#/components/schemas/Usage"},
                                "stop_reason": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "429": {
                "description": "budget_exceeded: the scope has spent its budget for the period (nothing is written)",
                "content": ERROR_CONTENT,
            },
        },
    )
    paths["/sessions/{session_id}/cancel"] = {
        "post": {
            "operationId": "session_cancel",
            "summary": "Stop the running message of a session, whichever process runs it",
            "tags": ["sessions"],
            "security": BEARER,
            "parameters": [{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {
                    "description": "Cancel sent",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"ok": {"type": "boolean"}, "running": {"type": "boolean"}},
                            }
                        }
                    },
                },
                **{k: v for k, v in CHAT_ERRORS.items() if k in ("400", "401", "404")},
            },
        }
    }
    paths["/api/schemas/agent-folder/{name}.schema.json"] = {
        "get": {
            "operationId": "agent_folder_schema",
            "summary": "The JSON Schema of one agent folder file kind, for editors (public, cacheable)",
            "tags": ["operations"],
            "security": [],
            "parameters": [
                {
                    "name": "name",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": [kind.name for kind in folder_file_kinds()]},
                }
            ],
            "responses": {
                "200": {
                    "description": "A JSON Schema (draft 2020-12)",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "304": {"description": "Not modified (If-None-Match)"},
                "404": {"description": "No such schema", "content": ERROR_CONTENT},
            },
        }
    }
    paths["/health"] = {
        "get": {
            "operationId": "health",
            "summary": "Is this process able to serve?",
            "tags": ["operations"],
            "security": [],
            "responses": {"200": {"description": "Healthy"}, "503": {"description": "Degraded"}},
        }
    }
    return result


def add_event_schemas(result, generator, request, public):
    """A drf-spectacular postprocessing hook (after add_chat_endpoints): every `text/event-stream`
    response's schema is `ChatEvent` (core.event_schemas, one component per event type), and the event
    schemas' own addresses are listed."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(openapi_components())
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            for status, response in responses.items():
                if "text/event-stream" in response.get("content", {}):
                    # A new dict: operations may share one response object.
                    responses[status] = {
                        **response,
                        "description": f"{response['description']} Each frame's JSON is a ChatEvent "
                        f"(JSON Schemas: {EVENTS_PATH}).",
                        "content": {
                            **response["content"],
                            "text/event-stream": {"schema": {"$ref": "#/components/schemas/ChatEvent"}},
                        },
                    }
    paths = result.setdefault("paths", {})
    paths[EVENTS_PATH] = event_schema_operation("events_schema", "The JSON Schema of every chat stream event", [])
    paths[EVENT_PATH.replace("{type}", "{event_type}")] = event_schema_operation(
        "event_schema",
        "The JSON Schema of one chat stream event type",
        [
            {
                "name": "event_type",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(event_records())},
            }
        ],
    )
    return result


def event_schema_operation(operation_id: str, summary: str, parameters: list) -> dict:
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "description": "Public and cacheable (ETag, Cache-Control); JSON Schema draft 2020-12.",
            "tags": ["operations"],
            "security": [],
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "A JSON Schema (draft 2020-12)",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "304": {"description": "Not modified (If-None-Match)"},
                "404": {"description": "not_found: no such event type", "content": ERROR_CONTENT},
            },
        }
    }
