"""The base of every JSON API view (history, memory, stores, credentials, scopes): one place for who calls
and in which scope, so no view resolves a scope itself. And the scoping app's own endpoint,
`/api/scopes/<scope id>` (a scope's label and metadata; its erase) and `/api/scopes/<scope id>/export`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, renderers, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import ApiError, ValidationFailed
from core.streaming import streamed_response
from scoping.authentication import BearerAuthentication, Caller, ResolvedScope
from scoping.context import scope
from scoping.labels import (
    MAX_LABEL_CHARS,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_METADATA_KEY_CHARS,
    InvalidScopeDetail,
    parse_scope_details,
)
from scoping.models import Scope
from scoping.permissions import ScopePolicy
from scoping.schema import ERROR_RESPONSE as ERROR_RESPONSE  # re-exported: views import it from here too
from scoping.schema import errors
from scoping.selectors import get_scope
from scoping.services import erase_scope, export_scope, set_scope_details
from scoping.throttling import RateLimitThrottle

T = TypeVar("T")


class NoFormatOverride:
    """DRF's settings for content negotiation, less the `?format=` override."""

    URL_FORMAT_OVERRIDE = None


class JsonNegotiation(DefaultContentNegotiation):
    """These views answer JSON only, so `?format=` is no parameter of theirs: DRF would answer any value but
    `json` with an empty 404. (`Accept` is still honoured: one that excludes JSON is 406 not_acceptable.)"""

    # DRF reads only URL_FORMAT_OVERRIDE from it; the stubs type it as the whole settings object.
    settings = NoFormatOverride  # type: ignore[assignment]


class ScopedAPIView(APIView):
    """Authenticates the caller, resolves its scope (JWT claims first, then `scope_id` for callers that
    may choose), enforces requireScope and the operator permissions, then the rate limits; handlers then
    run their work with `handle_scoped`, inside that scope."""

    authentication_classes = [BearerAuthentication]
    permission_classes = [ScopePolicy]
    content_negotiation_class = JsonNegotiation
    throttle_classes = [RateLimitThrottle]
    # What a staff session needs besides studio.view_studio for reads (scoping.permissions).
    operator_permissions: dict[str, tuple[str, ...]] = {}
    # The URL keyword that names the scope the view acts on (a resource that is a scope); None: the
    # caller's scope, resolved from its token or the request's `scope_id`.
    scope_url_kwarg: str | None = None
    resolved: ResolvedScope  # set by ScopePolicy

    def scope_optional(self, request: Request) -> bool:
        """True when what the request acts on has no scope, so requireScope does not apply."""
        return False

    def handle_scoped(self, handler: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with scope(self.resolved.scope_id):
            return handler(*args, **kwargs)


# --- /api/scopes/<scope id>: a scope's label and metadata (SPEC §10) ----------------------------------------

SCOPE_DETAILS = inline_serializer(
    "ScopeDetails",
    {
        "scope_id": serializers.CharField(help_text='The raw scope id ("" is the global scope).'),
        "label": serializers.CharField(help_text='Display text for people ("": none).'),
        "metadata": serializers.DictField(help_text="A small JSON object ({}: none)."),
        "first_seen_at": serializers.DateTimeField(),
        "last_seen_at": serializers.DateTimeField(),
    },
)
SCOPE_ID_PARAM = OpenApiParameter(
    "scope_id",
    str,
    OpenApiParameter.PATH,
    description="The scope id, percent-encoded as one path segment (`/` as `%2F`). The global scope's id is "
    "empty, so its address is `/api/scopes/` itself.",
)
# Besides the common errors (amodal_site.schema): a --manage-scopes key only, its own scope if restricted.
ACCESS_ERRORS = ("invalid_scope", "forbidden")
SCOPE_EXAMPLE = {
    "scope_id": "tenant_01HZX4Q8ACME",
    "label": "Acme Hotels",
    "metadata": {"plan": "pro", "region": "eu-west"},
    "first_seen_at": "2026-11-02T08:00:00+00:00",
    "last_seen_at": "2026-12-06T18:30:00+00:00",
}


# The schema of the PUT body; parse_scope_details does the checking (shared with the admin form).
SCOPE_DETAILS_BODY = inline_serializer(
    "ScopeDetailsBody",
    {
        "label": serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=MAX_LABEL_CHARS,
            help_text=f'Trimmed; at most {MAX_LABEL_CHARS} printable characters (no NUL or line breaks); "" clears it.',
        ),
        "metadata": serializers.DictField(
            required=False,
            help_text=f"A JSON object of at most {MAX_METADATA_BYTES} bytes (compact JSON), nested at most "
            f"{MAX_METADATA_DEPTH} levels, keys of 1 to {MAX_METADATA_KEY_CHARS} printable characters; "
            "{} clears it.",
        ),
    },
)


class ManagesScopes(permissions.BasePermission):
    message = "Only an API key created with --manage-scopes may manage scopes (label, metadata, export, erase)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        caller = request.user
        return isinstance(caller, Caller) and caller.kind == "api_key" and caller.manage_scopes


class ScopeManagementView(ScopedAPIView):
    """A scope as the resource, named by the URL, for the SaaS's backend: only an API key created with
    --manage-scopes (a key restricted to one scope manages that scope only). The global scope is a scope like
    any other here, whatever requireScope says."""

    permission_classes = [ManagesScopes, *ScopedAPIView.permission_classes]
    scope_url_kwarg = "scope_id"

    def scope_optional(self, request: Request) -> bool:
        return True

    def actor(self, request: Request) -> str:
        """Who the audit log records: "api-key:<name>"."""
        caller = request.user
        assert isinstance(caller, Caller)  # ManagesScopes lets only an API key's Caller through
        return caller.sub


class ScopeDetail(ScopeManagementView):
    """`GET|PUT|DELETE /api/scopes/<scope id>`: a scope's label and metadata; its erase."""

    @extend_schema(
        operation_id="scope_details",
        parameters=[SCOPE_ID_PARAM],
        responses={200: SCOPE_DETAILS, **errors(*ACCESS_ERRORS, "scope_not_found")},
        summary="A scope's label and metadata",
        description="A scope's label and metadata, and when it was first and last seen. Only an API key created "
        "with --manage-scopes (a key restricted to a scope: that scope only).",
        examples=[OpenApiExample("a scope", value=SCOPE_EXAMPLE, response_only=True, status_codes=[200])],
    )
    def get(self, request: Request, scope_id: str) -> Response:
        scope = get_scope(self.resolved.scope_id)
        if scope is None:
            raise ApiError(404, "scope_not_found", "No scope with this id has been seen.")
        return Response(scope_details_as_dict(scope))

    @extend_schema(
        operation_id="scope_details_set",
        parameters=[SCOPE_ID_PARAM],
        request=SCOPE_DETAILS_BODY,
        responses={200: SCOPE_DETAILS, **errors("validation_error", *ACCESS_ERRORS)},
        summary="Set a scope's label and metadata",
        description='Set a scope\'s label and/or metadata; a field left out keeps its value (`""` / `{}` clear '
        "them). A scope not seen yet is created, as its first use would. Only an API key created with "
        "--manage-scopes.",
        examples=[
            OpenApiExample(
                "label",
                value={"label": "Acme Hotels", "metadata": {"plan": "pro", "region": "eu-west"}},
                request_only=True,
            ),
            OpenApiExample("set", value=SCOPE_EXAMPLE, response_only=True, status_codes=[200]),
        ],
    )
    def put(self, request: Request, scope_id: str) -> Response:
        if request.stream is None:  # an empty body, which DRF would read as {}
            raise ValidationFailed("body: send a JSON object with label and/or metadata.")
        try:
            change = parse_scope_details(request.data)
        except InvalidScopeDetail as exc:
            raise ValidationFailed(str(exc))
        scope = set_scope_details(scope_id=self.resolved.scope_id, change=change)
        return Response(scope_details_as_dict(scope))

    @extend_schema(
        operation_id="scope_erase",
        parameters=[SCOPE_ID_PARAM],
        responses={
            200: inline_serializer(
                "ScopeErased",
                {
                    "ok": serializers.BooleanField(),
                    "deleted": serializers.DictField(
                        child=serializers.IntegerField(),
                        help_text="Rows erased per kind (`usage`: kept for billing under an anonymous id).",
                    ),
                },
            ),
            **errors(*ACCESS_ERRORS, "global_scope", "erased_scope", "scope_not_found", "scope_not_erased"),
        },
        summary="Erase everything of a scope",
        examples=[
            OpenApiExample(
                "erased",
                value={"ok": True, "deleted": {"document": 3, "memory": 2, "message": 40, "session": 6, "usage": 12}},
                response_only=True,
                status_codes=[200],
            )
        ],
        description="Erase everything of the scope (sessions, messages, memory, documents, credentials, its label; "
        "usage rows stay for billing totals under an anonymous id), then check that nothing of it is left. "
        "Recorded in the scope audit log. Cannot be undone: export it first.",
    )
    def delete(self, request: Request, scope_id: str) -> Response:
        deleted = erase_scope(scope_id=self.resolved.scope_id, actor=self.actor(request))
        return Response({"ok": True, "deleted": deleted})


class JSONLinesRenderer(renderers.JSONRenderer):
    """Admits `Accept: application/x-ndjson`, the export's own type, in content negotiation (else 406). The
    export itself is a streamed response, not rendered; an error is answered as application/json
    (ScopeExport.handle_exception), the one shape every error has."""

    media_type = "application/x-ndjson"
    format = "jsonl"


class ScopeExport(ScopeManagementView):
    """`GET /api/scopes/<scope id>/export`: everything of the scope as JSON Lines, streamed (scoping.services
    .export_scope)."""

    renderer_classes = [renderers.JSONRenderer, JSONLinesRenderer]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = renderers.JSONRenderer()
        self.request.accepted_media_type = "application/json"
        return response

    @extend_schema(
        operation_id="scope_export",
        parameters=[SCOPE_ID_PARAM],
        responses={
            (200, "application/x-ndjson"): OpenApiResponse(
                OpenApiTypes.STR,
                description="JSON Lines: one object a line, each with a `kind` (scope, memory, memory_change, "
                "session, message, tool_call, usage, credential (key names only, never a value), "
                "credential_change, pending_action, document, document_version, ...), streamed.",
            ),
            **errors(*ACCESS_ERRORS, "scope_not_found"),
        },
        summary="Export everything of a scope (JSON Lines)",
        description="Everything of the scope, streamed as JSON Lines (`application/x-ndjson`, one object a line "
        "with its `kind`), read in one snapshot on PostgreSQL. Recorded in the scope audit log. Only an API key "
        "created with --manage-scopes.",
        examples=[
            OpenApiExample(
                "lines",
                value='{"kind": "scope", "scope_id": "tenant_01HZX4Q8ACME", "label": "Acme Hotels", ...}\n'
                '{"kind": "session", "id": "5b7e2a6c-0d0e-4b8f-9a5e-6a1c7e1f2b3d", ...}\n',
                media_type="application/x-ndjson",
                response_only=True,
                status_codes=[200],
            )
        ],
    )
    def get(self, request: Request, scope_id: str) -> StreamingHttpResponse:
        chunks = export_scope(scope_id=self.resolved.scope_id, actor=self.actor(request))
        response = streamed_response(request._request, chunks, content_type="application/x-ndjson")
        response["Content-Disposition"] = 'attachment; filename="scope-export.jsonl"'
        return response


def scope_details_as_dict(scope: Scope) -> dict[str, Any]:
    return {
        "scope_id": scope.scope_id,
        "label": scope.label,
        "metadata": scope.metadata,
        "first_seen_at": scope.first_seen_at,
        "last_seen_at": scope.last_seen_at,
    }
