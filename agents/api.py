"""Session history for end users' widgets (SPEC §3): the caller's scope only."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from agents import selectors, services
from agents.turn.request import StrictCharField
from scoping.api import ScopedAPIView


class SessionPatchSerializer(serializers.Serializer):
    title = StrictCharField(required=False, allow_blank=True, max_length=200)
    tags = serializers.ListField(child=StrictCharField(max_length=64, allow_blank=False), required=False, max_length=50)
    scope_id = serializers.JSONField(required=False)


OK_RESPONSE = inline_serializer("Ok", {"ok": serializers.BooleanField()})
SCOPE_PARAM = OpenApiParameter("scope_id", str, description="The scope, for API-key callers.")


class SessionHistoryList(ScopedAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("limit", int, description="1 to 200, default 50."),
            OpenApiParameter("before", str, description="The X-Next-Cursor of the previous page."),
            OpenApiParameter("tags", str, description="Comma-separated; sessions with any of them."),
            SCOPE_PARAM,
        ],
        responses={200: inline_serializer("SessionSummary", {"id": serializers.CharField()}, many=True)},
    )
    def get(self, request: Request) -> Response:
        limit = selectors.parse_limit(request.query_params.get("limit"))
        tags = [t.strip() for t in request.query_params.get("tags", "").split(",") if t.strip()]
        page, next_cursor = self.handle_scoped(
            selectors.session_page, limit=limit, before=request.query_params.get("before"), tags=tags
        )
        response = Response([selectors.session_summary(session) for session in page])
        if next_cursor:
            response["X-Next-Cursor"] = next_cursor
        return response


class SessionHistoryDetail(ScopedAPIView):
    operator_permissions = {"PATCH": ("agents.change_session",), "DELETE": ("agents.delete_session",)}

    @extend_schema(
        parameters=[SCOPE_PARAM], responses={200: inline_serializer("SessionDetail", {"id": serializers.CharField()})}
    )
    def get(self, request: Request, session_id: str) -> Response:
        def detail():
            return selectors.session_detail(services.get_session(session_id))

        return Response(self.handle_scoped(detail))

    @extend_schema(request=SessionPatchSerializer, responses={200: OK_RESPONSE})
    def patch(self, request: Request, session_id: str) -> Response:
        serializer = SessionPatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data

        def update():
            services.update_session(
                session=services.get_session(session_id), title=data.get("title"), tags=data.get("tags")
            )

        self.handle_scoped(update)
        return Response({"ok": True})

    @extend_schema(parameters=[SCOPE_PARAM], responses={200: OK_RESPONSE})
    def delete(self, request: Request, session_id: str) -> Response:
        self.handle_scoped(lambda: services.delete_session(session=services.get_session(session_id)))
        return Response({"ok": True})
