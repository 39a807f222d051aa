"""Credentials over HTTP (SPEC §4 "Production provisioning"), for a SaaS backend or a deploy script:
`PUT|DELETE /api/credentials/<KEY>` and `GET /api/credentials`.

Only an API key created with `--manage-credentials` may call them (anyone else: 403 forbidden). The scope is
resolved as everywhere else (scoping.authentication.resolve_scope): a key restricted to a scope acts in it
(another `scope_id` is 403 scope_forbidden); an unrestricted key names it in the body or `?scope_id=`
(none: the global scope). A value is write-only: no answer ever contains one.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from connections import selectors, services
from connections.models import (
    MAX_CREDENTIAL_VALUE_CHARS,
    ScopedCredential,
    validate_credential_key,
    validate_credential_value,
)
from core.errors import ApiError
from scoping.api import ScopedAPIView
from scoping.authentication import Caller
from scoping.schema import errors

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 100_000_000

SCOPE_PARAM = OpenApiParameter("scope_id", str, description="The scope (default: the key's own, else global).")
CREDENTIAL_FIELDS: dict[str, serializers.Field] = {
    "key": serializers.CharField(),
    "scope_id": serializers.CharField(),
    "updated_at": serializers.DateTimeField(),
    "updated_by": serializers.CharField(help_text="Who changed it last: api-key:<name>, command:<user> or a user."),
}
WRITTEN = inline_serializer(
    "CredentialWritten",
    {**CREDENTIAL_FIELDS, "result": serializers.ChoiceField(choices=["created", "replaced", "unchanged"])},
)
CREDENTIAL_PAGE = inline_serializer(
    "CredentialPage",
    {
        "credentials": inline_serializer("Credential", CREDENTIAL_FIELDS, many=True),
        "limit": serializers.IntegerField(),
        "offset": serializers.IntegerField(),
        "has_more": serializers.BooleanField(),
    },
)
OK = inline_serializer("CredentialDeleted", {"ok": serializers.BooleanField()})
# Besides the common errors (amodal_site.schema): who may, and in which scope.
ACCESS_ERRORS = ("invalid_scope", "forbidden", "scope_forbidden")
CREDENTIAL_EXAMPLE = {
    "key": "FINANCE_TOKEN",
    "scope_id": "household-garcia",
    "updated_at": "2026-12-06T18:30:00+00:00",
    "updated_by": "api-key:deploy",
}


@extend_schema_field(OpenApiTypes.STR)
class CredentialValueField(serializers.Field):
    """A non-empty string (no coercion of numbers), checked by the one credential value rule. Write-only:
    no serializer ever renders a value."""

    def to_internal_value(self, data: object) -> str:
        try:
            return validate_credential_value(data)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages)


class CredentialPutSerializer(serializers.Serializer):
    value = CredentialValueField(help_text=f"The secret: 1 to {MAX_CREDENTIAL_VALUE_CHARS} characters, no NUL.")
    scope_id = serializers.JSONField(required=False, allow_null=True, help_text="The scope (see above).")


class CredentialScopeSerializer(serializers.Serializer):
    scope_id = serializers.JSONField(required=False, allow_null=True, help_text="Or the scope_id query parameter.")


class ManagesCredentials(permissions.BasePermission):
    message = "Only an API key created with --manage-credentials may manage credentials."

    def has_permission(self, request: Request, view: APIView) -> bool:
        caller = request.user
        return isinstance(caller, Caller) and caller.kind == "api_key" and caller.manage_credentials


class CredentialAPIView(ScopedAPIView):
    """Credentials belong to a scope but are managed for it, never by it: requireScope does not apply
    (the global scope's credentials are legitimate)."""

    permission_classes = [ManagesCredentials, *ScopedAPIView.permission_classes]

    def scope_optional(self, request: Request) -> bool:
        return True

    def actor_name(self, request: Request) -> str:
        caller = request.user
        if not isinstance(caller, Caller):  # ManagesCredentials lets only an API key's Caller through
            raise exceptions.PermissionDenied(ManagesCredentials.message)
        return caller.sub  # "api-key:<name>"


class CredentialList(CredentialAPIView):
    @extend_schema(
        operation_id="credentials_list",
        parameters=[
            SCOPE_PARAM,
            OpenApiParameter("limit", int, description=f"1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}."),
            OpenApiParameter("offset", int, description="Credentials to skip, default 0."),
        ],
        responses={200: CREDENTIAL_PAGE, **errors("validation_error", *ACCESS_ERRORS)},
        summary="List a scope's credentials (never a value)",
        description="The scope's credentials by key, with who changed each last: never a value. Only an API key "
        "created with --manage-credentials.",
        examples=[
            OpenApiExample(
                "a page",
                value={"credentials": [CREDENTIAL_EXAMPLE], "limit": 100, "offset": 0, "has_more": False},
                response_only=True,
                status_codes=[200],
            )
        ],
    )
    def get(self, request: Request) -> Response:
        scope_id = self.resolved.scope_id
        limit = whole_number(request.query_params.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = whole_number(request.query_params.get("offset"), "offset", 0, 0, MAX_OFFSET)
        rows, has_more = selectors.credential_page(scope_id=scope_id, limit=limit, offset=offset)
        return Response(
            {
                "credentials": [credential_as_dict(row) for row in rows],
                "limit": limit,
                "offset": offset,
                "has_more": has_more,
            }
        )


class CredentialDetail(CredentialAPIView):
    @extend_schema(
        operation_id="credential_put",
        request=CredentialPutSerializer,
        responses={
            201: OpenApiResponse(WRITTEN, description="Created."),
            200: OpenApiResponse(WRITTEN, description="Replaced, or unchanged (the same value)."),
            **errors("validation_error", *ACCESS_ERRORS),
        },
        summary="Set a scope's credential",
        description="Create or replace the credential KEY of the scope (what a connection's `scope:KEY` auth "
        "reads). The value is write-only: never sent back, never logged; the write is audited. Only an API key "
        "created with --manage-credentials.",
        examples=[
            OpenApiExample("set", value={"value": "s3cr3t-token", "scope_id": "household-garcia"}, request_only=True),
            OpenApiExample(
                "created", value={**CREDENTIAL_EXAMPLE, "result": "created"}, response_only=True, status_codes=[201]
            ),
            OpenApiExample(
                "replaced", value={**CREDENTIAL_EXAMPLE, "result": "replaced"}, response_only=True, status_codes=[200]
            ),
        ],
    )
    def put(self, request: Request, key: str) -> Response:
        scope_id = self.resolved.scope_id
        check_key(key)
        serializer = CredentialPutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = services.set_credential(
            scope_id=scope_id, key=key, value=serializer.validated_data["value"], actor_name=self.actor_name(request)
        )
        credential = selectors.get_credential(scope_id=scope_id, key=key)
        status = 201 if result == "created" else 200
        return Response({**credential_as_dict(credential), "result": result}, status=status)

    @extend_schema(
        operation_id="credential_delete",
        request=CredentialScopeSerializer,
        parameters=[SCOPE_PARAM],
        responses={
            200: OK,
            **errors("validation_error", *ACCESS_ERRORS, "credential_not_found"),
        },
        summary="Delete a scope's credential",
        description="Deletes the credential KEY of the scope (audited). Only an API key created with "
        "--manage-credentials.",
        examples=[
            OpenApiExample("scope", value={"scope_id": "household-garcia"}, request_only=True),
            OpenApiExample("deleted", value={"ok": True}, response_only=True, status_codes=[200]),
        ],
    )
    def delete(self, request: Request, key: str) -> Response:
        scope_id = self.resolved.scope_id
        check_key(key)
        if not services.delete_credential(scope_id=scope_id, key=key, actor_name=self.actor_name(request)):
            raise ApiError(404, "credential_not_found", f"This scope has no credential {key}.")
        return Response({"ok": True})


def check_key(key: str) -> None:
    try:
        validate_credential_key(key)
    except DjangoValidationError as exc:
        raise ApiError(400, "validation_error", f"key: {' '.join(exc.messages)}")


def whole_number(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw in (None, ""):
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9 and low <= int(raw) <= high):
        raise ApiError(400, "validation_error", f"{name}: must be a whole number from {low} to {high}.")
    return int(raw)


def credential_as_dict(credential: ScopedCredential) -> dict:
    return {
        "key": credential.key,
        "scope_id": credential.scope,
        "updated_at": credential.updated_at,
        "updated_by": credential.updated_by,
    }
