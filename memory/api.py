"""Memory over HTTP (SPEC §3): `GET|POST /api/memory`, `DELETE /api/memory/<id>`, the caller's scope only.

Routed by memory/urls.py (under /api/). An entry is named by its public id (a UUID); another scope's entry,
an integer or any malformed id is 404 memory_entry_not_found, exactly like a missing one. A delete by an
operator's staff session is recorded (memory.models.MemoryChange). The serving agent's settings come from
`current_memory_config()` (memory.config).
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.errors import ApiError
from memory import selectors, services
from memory.config import current_memory_config
from scoping.api import ScopedAPIView
from scoping.authentication import Caller
from scoping.schema import errors

SCOPE_PARAM = OpenApiParameter("scope_id", str, description="The scope, for API-key callers.")
ENTRY_ID_PARAM = OpenApiParameter(
    "entry_id",
    OpenApiTypes.UUID,
    OpenApiParameter.PATH,
    description="The entry's id (a UUID, as listed). Anything else, or another scope's entry, is 404.",
)


def entry_fields() -> dict[str, serializers.Field]:
    """An entry's fields (new instances each time: a serializer field belongs to one serializer)."""
    return {
        "id": serializers.UUIDField(help_text="The entry's id: a random UUID, never a counter."),
        "content": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
    }


ENTRY = inline_serializer("MemoryEntry", entry_fields())
ENTRY_LIST = inline_serializer(
    "MemoryEntryList",
    {
        "entries": inline_serializer(
            "MemoryEntryListed",
            {**entry_fields(), "rank": serializers.FloatField(required=False, help_text="With `query`: the match.")},
            many=True,
        ),
        "enabled": serializers.BooleanField(),
        "count": serializers.IntegerField(),
        "total_chars": serializers.IntegerField(),
        "max_entries": serializers.IntegerField(),
        "max_total_chars": serializers.IntegerField(),
    },
)


SCOPE_ERRORS = ("invalid_scope", "scope_required", "scope_forbidden", "forbidden")
ENTRY_EXAMPLE = {
    "id": "3f0c2b1e-8d4a-4c55-9a40-2f1d6b7e9c10",
    "content": "Groceries are budgeted at $450 a month.",
    "created_at": "2026-12-06T18:30:00+00:00",
}


class MemoryAddSerializer(serializers.Serializer):
    content = serializers.JSONField(help_text="The fact to remember.")
    scope_id = serializers.CharField(required=False, allow_blank=True, help_text="For API-key callers.")


class MemoryList(ScopedAPIView):
    operator_permissions = {"POST": ("memory.add_memoryentry",)}

    @extend_schema(
        operation_id="memory_list",
        summary="The scope's memory entries, or a search of them",
        description="What the agent remembers for the caller's scope (newest first), with the scope's use of the "
        "memory limits; with `query`, the entries that match it, best first, each with its `rank`.",
        parameters=[OpenApiParameter("query", str, description="Search: best matches first."), SCOPE_PARAM],
        responses={200: ENTRY_LIST, **errors(*SCOPE_ERRORS)},
        examples=[
            OpenApiExample(
                "entries",
                value={
                    "entries": [ENTRY_EXAMPLE],
                    "enabled": True,
                    "count": 1,
                    "total_chars": 39,
                    "max_entries": 50,
                    "max_total_chars": 4000,
                },
                response_only=True,
                status_codes=[200],
            )
        ],
    )
    def get(self, request: Request) -> Response:
        config = current_memory_config()
        query = request.query_params.get("query")

        def listing():
            if query:
                entries = [
                    {**selectors.entry_as_dict(entry), "rank": rank}
                    for entry, rank in selectors.search_entries(query=query)
                ]
            else:
                entries = [selectors.entry_as_dict(entry) for entry in selectors.list_entries()]
            return {"entries": entries, "enabled": config.enabled, **selectors.memory_usage(config=config).as_dict()}

        return Response(self.handle_scoped(listing))

    @extend_schema(
        operation_id="memory_add",
        summary="Remember a fact for the scope",
        description="Adds an entry to the caller's scope's memory, within its limits; the same fact twice is "
        "remembered once (200 with the existing entry).",
        request=MemoryAddSerializer,
        responses={
            201: OpenApiResponse(ENTRY, description="Remembered."),
            200: OpenApiResponse(ENTRY, description="Already remembered: the existing entry."),
            **errors("validation_error", "memory_disabled", "memory_budget_exceeded", *SCOPE_ERRORS),
        },
        examples=[
            OpenApiExample("a fact", value={"content": "Groceries are budgeted at $450 a month."}, request_only=True),
            OpenApiExample("remembered", value=ENTRY_EXAMPLE, response_only=True, status_codes=[201, 200]),
        ],
    )
    def post(self, request: Request) -> Response:
        config = current_memory_config()
        if not config.enabled:
            raise ApiError(400, "memory_disabled", "Memory is not enabled for this agent (amodal.json memory).")
        body = request.data if isinstance(request.data, dict) else {}
        result = self.handle_scoped(services.add_entry, content=body.get("content"), config=config)
        return Response(selectors.entry_as_dict(result.entry), status=201 if result.created else 200)


class MemoryEntryDetail(ScopedAPIView):
    operator_permissions = {"DELETE": ("memory.delete_memoryentry",)}

    @extend_schema(
        operation_id="memory_remove",
        summary="Forget a memory entry",
        description="Deletes the entry from the caller's scope's memory (an operator's delete is recorded).",
        parameters=[ENTRY_ID_PARAM, SCOPE_PARAM],
        responses={
            200: inline_serializer("MemoryOk", {"ok": serializers.BooleanField()}),
            **errors(*SCOPE_ERRORS, "memory_entry_not_found"),
        },
        examples=[OpenApiExample("forgotten", value={"ok": True}, response_only=True, status_codes=[200])],
    )
    def delete(self, request: Request, entry_id: str) -> Response:
        caller = request.user
        operator = caller.staff_user if isinstance(caller, Caller) and caller.kind == "staff" else None
        self.handle_scoped(services.remove_entry, entry_id=entry_id, changed_by=operator)  # an operator's: audited
        return Response({"ok": True})
