"""Session history for end users' widgets (SPEC §3): the caller's scope only."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from agents import selectors, services
from agents.models import MAX_FEEDBACK_COMMENT_CHARS
from agents.turn.request import StrictCharField
from core.validation import check_text
from scoping.api import ERROR_RESPONSE, ScopedAPIView
from scoping.authentication import Caller


class SessionPatchSerializer(serializers.Serializer):
    title = StrictCharField(required=False, allow_blank=True, max_length=200)
    tags = serializers.ListField(child=StrictCharField(max_length=64, allow_blank=False), required=False, max_length=50)
    scope_id = serializers.JSONField(required=False)


@extend_schema_field({"type": "integer", "enum": [1, -1]})
class RatingField(serializers.Field):
    """1 (good) or -1 (bad), as a JSON number: not true/false, not "1", not 1.0."""

    default_error_messages = {"invalid": "must be 1 (good) or -1 (bad), a number."}

    def to_internal_value(self, data: Any) -> int:
        if type(data) is not int or data not in (1, -1):
            self.fail("invalid")
        return data

    def to_representation(self, value: int) -> int:
        return value


class FeedbackSerializer(serializers.Serializer):
    message_id = StrictCharField(
        required=False,
        allow_null=True,
        max_length=64,
        help_text="The rated assistant message's `id` (from the history, or the `done` event's `message_id`); "
        "absent or null rates the whole session.",
    )
    rating = RatingField(help_text="1 (good) or -1 (bad).")
    comment = StrictCharField(
        required=False, allow_blank=True, max_length=MAX_FEEDBACK_COMMENT_CHARS, trim_whitespace=False, default=""
    )
    scope_id = serializers.JSONField(required=False)

    def validate_message_id(self, value: str | None) -> uuid.UUID | None:
        if value is None:
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            raise serializers.ValidationError("must be a message's id (a UUID).") from None

    def validate_comment(self, value: str) -> str:
        check_text(value, "comment")
        return value


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


class SessionFeedback(ScopedAPIView):
    """`POST /sessions/history/<id>/feedback`: an end user's rating of the session or of one of its assistant
    messages (SPEC §3 "Feedback"). The user is the caller's identity as sessions record it (a JWT's `sub`,
    `api-key:<name>` for an API key); rating the same thing again replaces that user's rating. A staff
    session may not rate: operators read the ratings in Studio."""

    @extend_schema(
        operation_id="sessions_history_feedback",
        parameters=[SCOPE_PARAM],
        request=FeedbackSerializer,
        responses={
            200: OK_RESPONSE,
            400: OpenApiResponse(
                ERROR_RESPONSE,
                description="validation_error naming rating, comment or message_id (not a UUID, or a user "
                "message), invalid_json or scope_required",
            ),
            401: ERROR_RESPONSE,
            404: OpenApiResponse(
                ERROR_RESPONSE,
                description="session_not_found (also another scope's session), or message_not_found: "
                "message_id names no message of this session",
            ),
        },
    )
    def post(self, request: Request, session_id: str) -> Response:
        serializer = FeedbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        caller = request.user
        assert isinstance(caller, Caller)  # BearerAuthentication made it

        def rate() -> None:
            services.rate(
                session=services.get_session(session_id),
                message_id=data.get("message_id"),
                user_sub=caller.sub,
                rating=data["rating"],
                comment=data["comment"],
            )

        self.handle_scoped(rate)
        return Response({"ok": True})
