"""The base of every JSON API view (history, memory, stores, credentials): one place for who calls and in
which scope, so no view resolves a scope itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

from scoping.authentication import BearerAuthentication, ResolvedScope
from scoping.context import scope
from scoping.permissions import ScopePolicy

T = TypeVar("T")

# The body of every error answer (core.errors.error_body), one OpenAPI component for all the JSON views.
ERROR_RESPONSE = inline_serializer(
    "ErrorResponse",
    {
        "error": inline_serializer(
            "ErrorResponseBody", {"code": serializers.CharField(), "message": serializers.CharField()}
        )
    },
)


class ScopedAPIView(APIView):
    """Authenticates the caller, resolves its scope (JWT claims first, then `scope_id` for callers that
    may choose), enforces requireScope and the operator permissions; handlers then run their work with
    `handle_scoped`, inside that scope."""

    authentication_classes = [BearerAuthentication]
    permission_classes = [ScopePolicy]
    # What a staff session needs besides studio.view_studio for reads (scoping.permissions).
    operator_permissions: dict[str, tuple[str, ...]] = {}
    resolved: ResolvedScope  # set by ScopePolicy

    def scope_optional(self, request: Request) -> bool:
        """True when what the request acts on has no scope, so requireScope does not apply."""
        return False

    def handle_scoped(self, handler: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with scope(self.resolved.scope_id):
            return handler(*args, **kwargs)
