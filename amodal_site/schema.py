"""OpenAPI additions (a drf-spectacular postprocessing hook, `complete_schema`):

- the chat endpoints, cancel, the agent folder's JSON Schemas and /health, which are plain Django views
  (DRF views would buffer the stream), so drf-spectacular cannot introspect them;
- the event stream's schema, `ChatEvent` (one component per event type, core.event_schemas), and the
  addresses of the event types' JSON Schemas (`add_event_schemas`, after `complete_schema`);
- on every authenticated operation, the errors any of them can answer whatever it does (401, 429, 503,
  400 invalid_json / 413 for a body, and 406 where DRF negotiates the answer's type), from the one catalogue
  of error codes (scoping.schema), each with an example, merged into what the view documents itself.
"""

from __future__ import annotations

from typing import Any

from core.agent_folder import current_agent, folder_file_kinds
from core.errors import error_body
from core.event_schemas import EVENT_PATH, EVENTS_PATH, event_records, openapi_components
from scoping.schema import ERROR_CODES, ERROR_COMPONENT, BearerScheme, error_description, error_examples
from stores.definitions import stores_of

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
# The event stream's types, from the typed records: every event but the WebSocket's own auth_ok.
EVENT_TYPES = tuple(kind for kind in event_records() if kind != "auth_ok")
EVENT_SCHEMAS_DIR = "docs/schemas/events/"

CHAT_REQUEST = {
    "type": "object",
    "properties": {
        "message": {"type": "string", "minLength": 1, "maxLength": 100_000},
        "session_id": {
            "type": "string",
            "format": "uuid",
            "nullable": True,
            "description": "Continue this session (of the caller's scope); absent: a new session.",
        },
        "scope_id": {"type": "string", "maxLength": 255, "description": "API-key callers only; ignored for a JWT."},
        "context": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "API-key callers only: the scope's context (string to string); a JWT's comes from its "
            "scopeContext claim.",
        },
        "model": {
            "type": "object",
            "description": "API-key callers only: another model for this message.",
            "properties": {"provider": {"type": "string", "enum": ["anthropic", "local"]}, "model": {"type": "string"}},
        },
    },
    "required": ["message"],
}
CHAT_REQUEST_EXAMPLES = {
    "new_session": {"summary": "A new session", "value": {"message": "How much did we spend on groceries in May?"}},
    "continue": {
        "summary": "The next message of a session",
        "value": {"message": "And in June?", "session_id": "5b7e2a6c-0d0e-4b8f-9a5e-6a1c7e1f2b3d"},
    },
    "api_key": {
        "summary": "An API key names the scope",
        "value": {"message": "Summarise this month", "scope_id": "household-garcia", "context": {"plan": "pro"}},
    },
}

USAGE = {
    "type": "object",
    "properties": {
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "cache_read_tokens": {"type": "integer"},
        "cache_write_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
        "cost_micros": {"type": "integer", "nullable": True, "description": "null when the model has no price"},
    },
}
USAGE_EXAMPLE = {
    "input_tokens": 1840,
    "output_tokens": 96,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "total_tokens": 1936,
    "cost_micros": 6960,
}

STREAM_EXAMPLE = (
    'data: {"type":"init","session_id":"5b7e2a6c-0d0e-4b8f-9a5e-6a1c7e1f2b3d","scope_id":"household-garcia",'
    '"deploy_id":"finance-agent@3f2a","timestamp":"2026-12-06T18:30:00.120Z"}\n\n'
    'data: {"type":"text_delta","content":"You spent $412.80 on groceries in May.",'
    '"timestamp":"2026-12-06T18:30:01.004Z"}\n\n'
    'data: {"type":"usage","model":"claude-sonnet-4-5","input_tokens":1840,"output_tokens":96,'
    '"cache_read_tokens":0,"cache_write_tokens":0,"cost_micros":6960,"timestamp":"2026-12-06T18:30:01.310Z"}\n\n'
    'data: {"type":"done","reason":"model_stop","usage":{"input_tokens":1840,"output_tokens":96,'
    '"cache_read_tokens":0,"cache_write_tokens":0,"total_tokens":1936,"cost_micros":6960},'
    '"message_id":"0d9e4c2a-7b1f-4e8a-9c3d-2a6b5f8e1c47","timestamp":"2026-12-06T18:30:01.312Z"}\n\n'
)
STREAM_RESPONSE = {
    "200": {
        "description": "Server-sent events (`Cache-Control: no-cache`): one frame `data: <one-line JSON>` per event, "
        "its `type` one of " + ", ".join(f"`{name}`" for name in EVENT_TYPES) + " (`init` always first, `done` "
        "always last, also after an `error`), and a `: keep-alive` comment after 15 s of silence. Each event "
        f"type's JSON Schema is in {EVENT_SCHEMAS_DIR} of the repository. A failure once the stream has started "
        "(the database going down, the model failing, the budget spent) is an `error` event, then `done`.",
        "content": {"text/event-stream": {"schema": {"type": "string"}, "example": STREAM_EXAMPLE}},
    }
}
SYNC_RESPONSE = {
    "200": {
        "description": "The whole answer, once the message has ended. `errors` lists the `error` events the "
        "stream would have sent (e.g. `max_turns`), if any.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "session_id": {"type": "string", "format": "uuid"},
                        "response": {"type": "string"},
                        "tool_calls": {"type": "array", "items": {"type": "object"}},
                        "usage": {"$ref": "#/components/schemas/Usage"},
                        "stop_reason": {
                            "type": "string",
                            "enum": ["model_stop", "max_turns", "user_abort", "error", "budget_exceeded"],
                        },
                        "message_id": {
                            "type": "string",
                            "nullable": True,
                            "description": "The answer's last assistant message (rate it with feedback).",
                        },
                        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorResponseBody"}},
                    },
                    "required": ["session_id", "response", "tool_calls", "usage", "stop_reason"],
                },
                "example": {
                    "session_id": "5b7e2a6c-0d0e-4b8f-9a5e-6a1c7e1f2b3d",
                    "response": "You spent $412.80 on groceries in May.",
                    "tool_calls": [],
                    "usage": USAGE_EXAMPLE,
                    "stop_reason": "model_stop",
                    "message_id": "0d9e4c2a-7b1f-4e8a-9c3d-2a6b5f8e1c47",
                },
            }
        },
    }
}

HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "agent": {"type": "string"},
        "deploy_id": {"type": "string"},
        "database": {"type": "string", "enum": ["ok", "error"]},
        "channel_layer": {"type": "string", "enum": ["ok", "error"]},
        "row_security": {
            "type": "string",
            "enum": ["ok", "off", "error"],
            "description": "PostgreSQL row-level security (AMODAL_DB_ROW_SECURITY): off, ok, or on but not "
            "usable (its role or policies missing: run migrate; the log says which)",
        },
    },
}
HEALTH_EXAMPLE = {
    "status": "ok",
    "agent": "finance-agent",
    "deploy_id": "finance-agent@3f2a",
    "database": "ok",
    "channel_layer": "ok",
    "row_security": "ok",
}

# What a chat message can be refused with before its stream starts (JSON, not an event).
CHAT_CODES = (
    "validation_error",
    "scope_required",
    "invalid_scope",
    "scope_forbidden",
    "model_override_forbidden",
    "session_not_found",
    "session_busy",
)
CHAT_DESCRIPTION = (
    "Send one user message to the agent, in a new session or an existing one of the caller's scope. A JWT's "
    "scope and context come from its claims only; an API key names them in the body. Refusals (bad input, "
    "another scope's session, a busy session, a rate limit) are JSON errors before anything is streamed."
)


def error_response(codes: list[str]) -> dict[str, Any]:
    return {
        "description": error_description(codes),
        "content": {"application/json": {"schema": ERROR_REF, "examples": error_examples(codes)}},
    }


def codes_by_status(codes: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for code in codes:
        grouped.setdefault(str(ERROR_CODES[code].status), []).append(code)
    return grouped


def chat_operation(operation_id: str, summary: str, description: str, responses: dict, codes=CHAT_CODES) -> dict:
    errors = {status: error_response(group) for status, group in codes_by_status(codes).items()}
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "description": description,
            "tags": ["chat"],
            "security": BEARER,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ChatRequest"},
                        "examples": CHAT_REQUEST_EXAMPLES,
                    }
                },
            },
            "responses": {**responses, **errors},
        }
    }


def plain_paths() -> dict[str, dict]:
    """The operations of the plain Django views."""
    stream = chat_operation(
        "chat_stream",
        "Send a message; stream the answer (SSE)",
        CHAT_DESCRIPTION + " The answer streams as server-sent events; a client that disconnects stops the work "
        "(what was produced is saved).",
        STREAM_RESPONSE,
    )
    alias = chat_operation(
        "chat", "Send a message; stream the answer (same as /chat/stream)", CHAT_DESCRIPTION, STREAM_RESPONSE
    )
    sync = chat_operation(
        "chat_sync",
        "Send a message; get the whole answer as JSON",
        CHAT_DESCRIPTION + " The answer comes whole once the message has ended. A scope over its budget is "
        "429 `budget_exceeded` and nothing is written; a database failure while it runs is 503.",
        SYNC_RESPONSE,
        (*CHAT_CODES, "budget_exceeded"),
    )
    cancel_codes = ["invalid_json", "invalid_scope", "scope_required", "scope_forbidden", "session_not_found"]
    return {
        "/chat/stream": stream,
        "/chat": alias,
        "/chat/sync": sync,
        "/sessions/{session_id}/cancel": {
            "post": {
                "operationId": "session_cancel",
                "summary": "Stop the running message of a session",
                "description": "Stops the session's running message, whichever server process runs it (through the "
                "channel layer): its stream ends with `done{reason: user_abort}`. `running` says whether a message "
                "was running. The body is optional: `scope_id` for API-key callers.",
                "tags": ["sessions"],
                "security": BEARER,
                "parameters": [
                    {
                        "name": "session_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The session's id (`init`'s `session_id`).",
                    }
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"scope_id": {"type": "string"}}},
                            "example": {"scope_id": "household-garcia"},
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "The cancel was sent.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"ok": {"type": "boolean"}, "running": {"type": "boolean"}},
                                    "required": ["ok", "running"],
                                },
                                "example": {"ok": True, "running": True},
                            }
                        },
                    },
                    **{status: error_response(group) for status, group in codes_by_status(cancel_codes).items()},
                },
            }
        },
        "/api/schemas/agent-folder/{name}.schema.json": {
            "get": {
                "operationId": "agent_folder_schema",
                "summary": "The JSON Schema of one agent folder file kind",
                "description": "For editors: put its URL in a file's `$schema`. Public and cacheable (ETag).",
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
                        "content": {
                            "application/json": {
                                "schema": {"type": "object"},
                                "example": {
                                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                                    "type": "object",
                                },
                            }
                        },
                    },
                    "304": {"description": "Not modified (If-None-Match)"},
                    "404": {
                        "description": "`not_found`: no schema of this name",
                        "content": {
                            "application/json": {
                                "schema": ERROR_REF,
                                "example": error_body(
                                    "not_found", "No agent folder schema 'x'; there are amodal.schema.json, ..."
                                ),
                            }
                        },
                    },
                },
            }
        },
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Is this process able to serve?",
                "description": "For load balancers: 200 when the database and the channel layer answer (and, with "
                "row-level security on, its role and policies are in place), else 503.",
                "tags": ["operations"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "Healthy",
                        "content": {"application/json": {"schema": HEALTH, "example": HEALTH_EXAMPLE}},
                    },
                    "503": {
                        "description": "Degraded: a dependency does not answer, or row-level security is on "
                        "but not installed",
                        "content": {
                            "application/json": {
                                "schema": HEALTH,
                                "example": {**HEALTH_EXAMPLE, "status": "degraded", "database": "error"},
                            }
                        },
                    },
                },
            }
        },
    }


# --- What every authenticated operation can answer ----------------------------------------------------------


def common_codes(operation: dict, *, negotiates: bool) -> list[str]:
    codes = ["authentication_required", "invalid_token", "rate_limited", "service_unavailable"]
    if "requestBody" in operation:
        codes += ["invalid_json", "request_too_large"]
    if negotiates:  # DRF's content negotiation: an Accept it cannot answer is 406 (the plain views ignore it)
        codes.append("not_acceptable")
    return codes


def add_codes(responses: dict, status: str, codes: list[str]) -> None:
    """Document `codes` under `status`, merged into what the operation already says there."""
    response = responses.get(status)
    if response is None:
        responses[status] = error_response(codes)
        return
    missing = [code for code in codes if f"`{code}`" not in response.get("description", "")]
    if not missing:
        return
    described = response.get("description", "").rstrip(". ")
    response["description"] = f"{described}; {error_description(missing)}" if described else error_description(missing)
    media = response.setdefault("content", {}).setdefault("application/json", {"schema": ERROR_REF})
    media.setdefault("examples", {}).update(error_examples(missing))


def add_common_errors(paths: dict, plain: set[str]) -> None:
    for path, path_item in paths.items():
        for operation in path_item.values():
            if not operation.get("security", BEARER):  # public: answers no 401, counts against no limit
                continue
            for status, codes in codes_by_status(common_codes(operation, negotiates=path not in plain)).items():
                add_codes(operation["responses"], status, codes)


def complete_schema(result, generator, request, public):
    """A drf-spectacular postprocessing hook."""
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update({"ChatRequest": CHAT_REQUEST, "Usage": USAGE})
    components.setdefault("securitySchemes", {})["bearerAuth"] = BearerScheme.scheme
    paths = result.setdefault("paths", {})
    plain = plain_paths()
    paths.update(plain)
    add_common_errors(paths, set(plain))
    name_the_stores(paths)
    tag_by_resource(paths)
    result["tags"] = TAGS
    return result


TAGS = [
    {"name": "chat", "description": "Send a message; the answer streams as server-sent events or comes whole."},
    {"name": "sessions", "description": "The caller's scope's conversations: history, titles, feedback, cancel."},
    {"name": "stores", "description": "The agent's document stores, per scope (or shared by every scope)."},
    {"name": "memory", "description": "What the agent remembers for a scope."},
    {
        "name": "credentials",
        "description": "Per-scope secrets for the connections (API keys with --manage-credentials).",
    },
    {
        "name": "scopes",
        "description": "A scope's label and metadata, export and erase (API keys with --manage-scopes).",
    },
    {"name": "operations", "description": "Health and the agent folder's JSON Schemas (public)."},
]


def tag_by_resource(paths: dict) -> None:
    """/api/<resource>/... is tagged <resource> (drf-spectacular would tag every such path `api`)."""
    for path, item in paths.items():
        for operation in item.values():
            if operation.get("tags") == ["api"]:
                operation["tags"] = [path.split("/")[2]]


def name_the_stores(paths: dict) -> None:
    """The `{name}` of the store paths: one of the serving agent's stores (another is 404 store_not_found)."""
    names = sorted(stores_of(current_agent()))
    for path, item in paths.items():
        if not path.startswith("/api/stores/{name}"):
            continue
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] == "name":
                    parameter["schema"] = {"type": "string", "enum": names}
                    parameter["description"] = "A store of the agent folder this server serves."


def add_event_schemas(result, generator, request, public):
    """A drf-spectacular postprocessing hook (after complete_schema): every `text/event-stream`
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
                            "text/event-stream": {
                                **response["content"]["text/event-stream"],
                                "schema": {"$ref": "#/components/schemas/ChatEvent"},
                            },
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
                    "content": {
                        "application/json": {
                            "schema": {"type": "object"},
                            "example": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"},
                        }
                    },
                },
                "304": {"description": "Not modified (If-None-Match)"},
                "404": {
                    "description": "`not_found`: no such event type",
                    "content": {
                        "application/json": {
                            "schema": ERROR_REF,
                            "example": error_body("not_found", "No event type 'x'; there are auth_ok, ..."),
                        }
                    },
                },
            },
        }
    }
