"""Session history for end users' widgets (SPEC §3): the caller's scope only."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import (
    OpenApiExample,
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
from scoping.api import ScopedAPIView
from scoping.authentication import Caller
from scoping.schema import errors


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
# What every history operation can be refused with besides the common errors (amodal_site.schema).
SCOPE_ERRORS = ("invalid_scope", "scope_required", "scope_forbidden", "forbidden")
SESSION_ERRORS = (*SCOPE_ERRORS, "session_not_found")

SESSION_SUMMARY_EXAMPLE = {
    "id": "5b7e2a6c-0d0e-4b8f-9a5e-6a1c7e1f2b3d",
    "title": "How much did we spend on groceries in May?",
    "scope_id": "household-garcia",
    "tags": ["budget"],
    "status": "active",
    "message_count": 2,
    "created_at": "2026-12-06T18:30:00.120000+00:00",
    "updated_at": "2026-12-06T18:30:01.312000+00:00",
    "model": "claude-sonnet-4-5",
    "provider": "anthropic",
    "deploy_id": "finance-agent@3f2a",
    "token_usage": {"input_tokens": 1840, "output_tokens": 96, "total_tokens": 1936},
    "cost_micros": 6960,
}
SESSION_DETAIL_EXAMPLE = {
    **SESSION_SUMMARY_EXAMPLE,
    "messages": [
        {
            "id": "9a1f3e2b-4c5d-4e6f-8a7b-1c2d3e4f5a6b",
            "role": "user",
            "type": "user",
            "text": "How much did we spend on groceries in May?",
            "timestamp": "2026-12-06T18:30:00.120000+00:00",
            "toolCalls": [],
            "interrupted": False,
            "error": None,
        },
        {
            "id": "0d9e4c2a-7b1f-4e8a-9c3d-2a6b5f8e1c47",
            "role": "assistant",
            "type": "assistant_text",
            "text": "You spent $412.80 on groceries in May.",
            "timestamp": "2026-12-06T18:30:01.312000+00:00",
            "toolCalls": [],
            "interrupted": False,
            "error": None,
        },
    ],
    "feedback": [
        {
            "message_id": "0d9e4c2a-7b1f-4e8a-9c3d-2a6b5f8e1c47",
            "rating": 1,
            "comment": "",
            "user": "user-42",
            "updated_at": "2026-12-06T18:31:00+00:00",
        }
    ],
}
OK_EXAMPLE = OpenApiExample("ok", value={"ok": True}, response_only=True, status_codes=[200])


class SessionHistoryList(ScopedAPIView):
    @extend_schema(
        operation_id="sessions_history_list",
        summary="List the scope's sessions, newest first",
        description="The caller's scope's sessions, newest first, a page at a time: the next page's cursor is in "
        "the `X-Next-Cursor` response header (absent on the last page). Another scope's sessions never appear.",
        parameters=[
            OpenApiParameter("limit", int, description="1 to 200, default 50."),
            OpenApiParameter("before", str, description="The X-Next-Cursor of the previous page."),
            OpenApiParameter("tags", str, description="Comma-separated; sessions with any of them."),
            SCOPE_PARAM,
        ],
        responses={
            200: OpenApiResponse(
                inline_serializer("SessionSummary", {"id": serializers.CharField()}, many=True),
                description="An array of sessions (`X-Next-Cursor`: the next page's `before`).",
            ),
            **errors("validation_error", *SCOPE_ERRORS),
        },
        examples=[OpenApiExample("a page", value=[SESSION_SUMMARY_EXAMPLE], response_only=True, status_codes=[200])],
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
        operation_id="sessions_history_get",
        summary="One session with its messages and ratings",
        description="The session's fields as listed, plus `messages` in order (with their tool calls) and "
        "`feedback` (the end users' ratings, oldest first). Another scope's session is 404 like a missing one.",
        parameters=[SCOPE_PARAM],
        responses={200: inline_serializer("SessionDetail", {"id": serializers.CharField()}), **errors(*SESSION_ERRORS)},
        examples=[OpenApiExample("a session", value=SESSION_DETAIL_EXAMPLE, response_only=True, status_codes=[200])],
    )
    def get(self, request: Request, session_id: str) -> Response:
        def detail():
            return selectors.session_detail(services.get_session(session_id))

        return Response(self.handle_scoped(detail))

    @extend_schema(
        operation_id="sessions_history_update",
        summary="Set a session's title or tags",
        description="Sets what it is given (`title`, `tags`) and keeps the rest.",
        request=SessionPatchSerializer,
        responses={200: OK_RESPONSE, **errors("validation_error", *SESSION_ERRORS)},
        examples=[
            OpenApiExample("retitle", value={"title": "Groceries", "tags": ["budget", "may"]}, request_only=True),
            OK_EXAMPLE,
        ],
    )
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

    @extend_schema(
        operation_id="sessions_history_delete",
        summary="Delete a session",
        description="Deletes the session with its messages, tool calls and ratings (its usage stays for billing).",
        parameters=[SCOPE_PARAM],
        responses={200: OK_RESPONSE, **errors(*SESSION_ERRORS)},
        examples=[OK_EXAMPLE],
    )
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
        summary="Rate a session or one of its answers",
        description="An end user's thumbs up (1) or down (-1), with an optional comment, of the whole session or of "
        "one assistant message (`message_id`: the history's message `id`, or the `done` event's `message_id`). "
        "The same user rating the same thing again replaces their rating. A staff session may not rate.",
        parameters=[SCOPE_PARAM],
        request=FeedbackSerializer,
        responses={200: OK_RESPONSE, **errors("validation_error", *SESSION_ERRORS, "message_not_found")},
        examples=[
            OpenApiExample(
                "rate an answer",
                value={"message_id": "0d9e4c2a-7b1f-4e8a-9c3d-2a6b5f8e1c47", "rating": -1, "comment": "Wrong month"},
                request_only=True,
            ),
            OpenApiExample("rate the session", value={"rating": 1}, request_only=True),
            OK_EXAMPLE,
        ],
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
