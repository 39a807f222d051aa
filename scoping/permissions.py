"""What a caller may do over HTTP, and in which scope: the permission half of the pair every JSON API view
uses (BearerAuthentication decides who calls, ScopePolicy where it acts; scoping.api.ScopedAPIView).

Tokens and API keys are checked by authentication alone. An operator's session cookie is the one caller
that can reach every scope, so it gets nothing for being staff: reading needs `studio.view_studio`, and
each write needs the Django model permission the view names (SPEC §8 "Who sees what").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from scoping.authentication import Caller, resolve_addressed_scope, resolve_scope

VIEW_STUDIO = "studio.view_studio"
READ_METHODS = ("GET", "HEAD", "OPTIONS")


class OperatorPermissions(BasePermission):
    """For staff sessions: the view's `operator_permissions[method]`, all of them; reads need
    `studio.view_studio` unless the view says otherwise; a method the view does not list is refused."""

    message = "Your operator account lacks the permission for this (ask an admin for it)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        caller = request.user
        if not isinstance(caller, Caller) or caller.kind != "staff":
            return True
        required = required_permissions(getattr(view, "operator_permissions", {}), request.method or "")
        return required is not None and caller.staff_user.has_perms(required)


def required_permissions(table: Mapping[str, tuple[str, ...]], method: str) -> tuple[str, ...] | None:
    if method in table:
        return table[method]
    if method in READ_METHODS:
        return (VIEW_STUDIO,)
    return None


BODILESS_METHODS = ("GET", "HEAD")


class ScopePolicy(OperatorPermissions):
    """The operator permissions above, then the caller's scope, resolved by the one rule
    (scoping.authentication.resolve_scope) from the body's `scope_id` when the body is a JSON object that
    has one (never on a GET), else the query's; or, for a view whose URL names the scope it acts on
    (`scope_url_kwarg`), that one (scoping.authentication.resolve_addressed_scope). The result is
    `view.resolved`; a view whose target has no scope (a shared store) says so with `scope_optional(request)`."""

    def has_permission(self, request: Request, view: Any) -> bool:  # a scoping.api.ScopedAPIView
        if not super().has_permission(request, view):
            return False
        caller = request.user
        assert isinstance(caller, Caller)  # BearerAuthentication made it
        optional = view.scope_optional(request)
        if view.scope_url_kwarg is not None:
            view.resolved = resolve_addressed_scope(caller, view.kwargs[view.scope_url_kwarg], scope_optional=optional)
            return True
        # A GET has no body to read (a client that sends one anyway, even malformed, is not refused for it).
        body = {} if request.method in BODILESS_METHODS else request.data
        body = body if isinstance(body, dict) else {}
        scope_id = body["scope_id"] if "scope_id" in body else request.query_params.get("scope_id")
        view.resolved = resolve_scope(caller, scope_id, None, scope_optional=optional)
        return True
