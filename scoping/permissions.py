"""What a caller may do over HTTP, beside which scope it acts in (scoping.authentication).

Tokens and API keys are checked by authentication alone. An operator's session cookie is the one caller
that can reach every scope, so it gets nothing for being staff: reading needs `studio.view_studio`, and
each write needs the Django model permission the view names (SPEC §8 "Who sees what").
"""

from __future__ import annotations

from collections.abc import Mapping

from rest_framework.permissions import BasePermission

from scoping.authentication import Caller

VIEW_STUDIO = "studio.view_studio"
READ_METHODS = ("GET", "HEAD", "OPTIONS")


class OperatorPermissions(BasePermission):
    """For staff sessions: the view's `operator_permissions[method]`, all of them; reads need
    `studio.view_studio` unless the view says otherwise; a method the view does not list is refused."""

    message = "Your operator account lacks the permission for this (ask an admin for it)."

    def has_permission(self, request, view) -> bool:
        caller = request.user
        if not isinstance(caller, Caller) or caller.kind != "staff":
            return True
        required = required_permissions(getattr(view, "operator_permissions", {}), request.method)
        return required is not None and caller.staff_user.has_perms(required)


def required_permissions(table: Mapping[str, tuple[str, ...]], method: str) -> tuple[str, ...] | None:
    if method in table:
        return table[method]
    if method in READ_METHODS:
        return (VIEW_STUDIO,)
    return None
