"""OpenAPI pieces every JSON API view shares: the bearer security scheme (drf-spectacular finds it once
this module is imported, which ScopingConfig.ready does), the error body, and the catalogue of error codes
each view's `extend_schema` names with `errors(...)`: one meaning and one example per code, everywhere.

amodal_site.schema adds what every authenticated operation can answer (401, 429, 503...) from the same
catalogue, and tests/apidocs checks that every operation documents its errors this way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, inline_serializer
from rest_framework import serializers

from core.errors import error_body


class BearerScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # drf-spectacular is untyped
    target_class = "scoping.authentication.BearerAuthentication"
    name = "bearerAuth"
    scheme: dict[str, str] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A JWT with scope_id/scopeContext claims, or an API key (ak_...).",
    }

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return self.scheme


# The body of every error answer (core.errors.error_body): one OpenAPI component, ErrorResponse.
ERROR_COMPONENT = "ErrorResponse"
ERROR_RESPONSE = inline_serializer(
    ERROR_COMPONENT,
    {
        "error": inline_serializer(
            "ErrorResponseBody",
            {
                "code": serializers.CharField(help_text="What went wrong, in snake_case: the one field to branch on."),
                "message": serializers.CharField(help_text="A sentence for people, naming the field or limit."),
            },
        )
    },
)


@dataclass(frozen=True)
class ErrorCode:
    status: int
    meaning: str  # when it happens, for the operation's response description
    example: str  # a message the server really sends


ERROR_CODES: Mapping[str, ErrorCode] = {
    # 400
    "validation_error": ErrorCode(
        400, "a field is missing or wrong; the message names it", "message: This field is required."
    ),
    "invalid_json": ErrorCode(
        400,
        "the body is not JSON (UTF-8, no NaN) or nests deeper than 64 levels",
        "body: not valid JSON (Expecting value: line 1 column 1 (char 0)).",
    ),
    "invalid_scope": ErrorCode(
        400, "the scope id is not 1 to 255 printable characters", "scope_id must contain only printable characters."
    ),
    "scope_required": ErrorCode(
        400,
        "the agent sets scope.requireScope and the request resolves to the global scope",
        "This agent requires a scope: send a token with a scope_id claim or a scope_id in the body.",
    ),
    "key_mismatch": ErrorCode(
        400,
        "the URL's key differs from the key the entity's template makes of the document",
        "key: the URL names key 'a' but the document's key (template '{id}') is 'b'.",
    ),
    "memory_disabled": ErrorCode(
        400,
        "the agent has no memory (amodal.json memory)",
        "Memory is not enabled for this agent (amodal.json memory).",
    ),
    "memory_budget_exceeded": ErrorCode(
        400,
        "the entry would pass the scope's memory limits (entries or characters)",
        "The entry is 5000 characters long; memory holds at most 4000 characters in all. Remember a shorter fact.",
    ),
    "global_scope": ErrorCode(
        400,
        'the global scope ("") cannot be erased as a whole',
        'The global scope ("") holds what every scope shares (the shared stores): it cannot be erased as a whole.',
    ),
    "erased_scope": ErrorCode(
        400, "an `erased:` id holds erased scopes' usage rows", "Ids starting with 'erased:' are where erased ..."
    ),
    # 401
    "authentication_required": ErrorCode(401, "no Authorization header", "Send Authorization: Bearer <token>."),
    "invalid_token": ErrorCode(
        401,
        "a JWT that is malformed, expired, wrongly signed or with malformed claims; an unknown or revoked API key",
        "The token is invalid, expired or not signed with the expected key.",
    ),
    # 403
    "forbidden": ErrorCode(
        403,
        "the caller may not do this (the message says which key flag or operator permission it needs)",
        "Your operator account lacks the permission for this (ask an admin for it).",
    ),
    "scope_forbidden": ErrorCode(
        403,
        "an API key restricted to one scope names another",
        "This API key is restricted to another scope.",
    ),
    "model_override_forbidden": ErrorCode(
        403, "only an API key may choose the model", "Only API-key callers may choose the model."
    ),
    "shared_store_read_only": ErrorCode(
        403,
        "a shared store is written by a caller that is neither a staff session nor an API key with shared-write",
        "The store 'categories' is shared by every scope: only operators (a staff session or an API key with "
        "shared-write) may write it.",
    ),
    # 404 (another scope's thing is answered exactly like a missing one)
    "session_not_found": ErrorCode(
        404, "no such session in the caller's scope (also another scope's)", "No session with this id exists."
    ),
    "message_not_found": ErrorCode(
        404, "message_id names no message of this session", "message_id: no message with this id in this session."
    ),
    "scope_not_found": ErrorCode(
        404,
        "nothing of the scope is stored",
        "Nothing of the scope 'tenant-x' is stored (never used, or already erased).",
    ),
    "store_not_found": ErrorCode(404, "the agent has no store of this name", "No store is named 'preferencs'."),
    "document_not_found": ErrorCode(
        404,
        "no document with this key in the caller's scope (also another scope's)",
        "The store 'preferences' has no document with key 'currency'.",
    ),
    "memory_entry_not_found": ErrorCode(
        404,
        "no entry with this id in the caller's scope (also another scope's)",
        "No memory entry 3f0c2b1e-8d4a-4c55-9a40-2f1d6b7e9c10 exists in this scope.",
    ),
    "credential_not_found": ErrorCode(
        404, "the scope has no such credential", "This scope has no credential FINANCE_TOKEN."
    ),
    # 409
    "session_busy": ErrorCode(
        409,
        "the session is answering another message (waited 5 s for it)",
        "This session is answering another message; try again shortly.",
    ),
    "write_conflict": ErrorCode(
        409,
        "too many concurrent writes to one document",
        "Too many concurrent writes to preferences/currency; try again.",
    ),
    # 406
    "not_acceptable": ErrorCode(
        406,
        "the Accept header admits no type the operation answers in (JSON, or its own such as the export's "
        "application/x-ndjson); send no Accept or `*/*`",
        "Could not satisfy the request Accept header.",
    ),
    # 413
    "request_too_large": ErrorCode(
        413,
        "the body is over AMODAL_MAX_BODY_BYTES (1 MB by default)",
        "The request body is larger than this server accepts (1048576 bytes at most).",
    ),
    # 429
    "rate_limited": ErrorCode(
        429,
        "over a request limit of the API key or the scope (AMODAL_RATE_LIMIT_*), or all its stream slots are in "
        "use; Retry-After says when to retry",
        "This scope is over 120 requests a minute; retry in 7 s.",
    ),
    "budget_exceeded": ErrorCode(
        429,
        "the scope has spent its budget for the period; nothing is written",
        "This account has used this month's budget (December 2026, UTC); it resets at 2027-01-01 00:00 UTC.",
    ),
    # 500 (the one 500 a caller is told about: everything else unexpected is `internal_error`)
    "scope_not_erased": ErrorCode(
        500,
        "rows of the scope were still there after the erase (written meanwhile: stop the tenant's traffic "
        "first); the message names the kinds",
        "The scope 'tenant-x' still has rows after its erase (session: 1): were they written while it ran? Stop its "
        "traffic and erase it again.",
    ),
    # 503
    "service_unavailable": ErrorCode(
        503,
        "the database (or, for a cancel, the channel layer) cannot be reached; Retry-After says when to retry",
        "The server's database is busy or unavailable; please try again shortly.",
    ),
}


def error_description(codes: Iterable[str]) -> str:
    return "; ".join(f"`{code}`: {ERROR_CODES[code].meaning}" for code in codes)


def example_name(code: str) -> str:
    """The key drf-spectacular gives an OpenApiExample named `code` ("scope_not_found": "ScopeNotFound")."""
    return "".join(word.capitalize() for word in code.split("_"))


def error_examples(codes: Iterable[str]) -> dict[str, dict[str, object]]:
    """OpenAPI example objects, for a response's content."""
    return {
        example_name(code): {"summary": code, "value": error_body(code, ERROR_CODES[code].example)} for code in codes
    }


def errors(*codes: str) -> dict[int, OpenApiResponse]:
    """The error responses of these codes, grouped by status, for `extend_schema(responses={...})`."""
    by_status: dict[int, list[str]] = {}
    for code in codes:
        by_status.setdefault(ERROR_CODES[code].status, []).append(code)
    return {
        status: OpenApiResponse(
            ERROR_RESPONSE,
            description=error_description(group),
            examples=[
                OpenApiExample(
                    code, value=error_body(code, ERROR_CODES[code].example), response_only=True, status_codes=[status]
                )
                for code in group
            ],
        )
        for status, group in by_status.items()
    }
