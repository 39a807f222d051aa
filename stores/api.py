"""Stores over HTTP (SPEC §3 "Stores and memory over HTTP"): the caller's scope, or the shared partition.

Bodies carry the document under `data`, next to `scope_id` for API-key callers:
`PUT /api/stores/<name>/<key>` `{"data": {...}}`; `POST /api/stores/<name>` `{"data": {...}}` (the key comes
from the template) or `{"documents": [...]}` (a batch, all or nothing). A body without the `data` envelope
is taken as the document itself (less a `scope_id`, unless the entity declares such a field).

Shared stores live in the global partition: they are read the same from every scope, written only by a
staff session or an API key with shared-write (others get 403 shared_store_read_only), and they do not
need a scope even when the agent requires one (they act for no scope).
"""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.agent_folder import current_agent
from core.errors import ApiError
from scoping.api import ScopedAPIView
from scoping.schema import errors
from stores import selectors, services
from stores.definitions import FieldSpec, StoreDefinition, stores_of
from stores.documents import DocumentInvalid
from stores.errors import DocumentNotFound, StoreNotFound, invalid_document

SCOPE_PARAM = OpenApiParameter("scope_id", str, description="The scope, for API-key callers.")
DOCUMENT = inline_serializer(
    "StoreDocument",
    {
        "key": serializers.CharField(),
        "data": serializers.JSONField(),
        "version": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
        "expires_at": serializers.DateTimeField(allow_null=True),
        "stale": serializers.BooleanField(),
    },
)
DOCUMENT_PAGE = inline_serializer(
    "StoreDocumentPage",
    {
        "store": serializers.CharField(),
        "shared": serializers.BooleanField(),
        "documents": serializers.ListField(child=serializers.JSONField()),
        "limit": serializers.IntegerField(),
        "offset": serializers.IntegerField(),
        "has_more": serializers.BooleanField(),
    },
)
# POST answers one document, or for a batch the store's name and each document written.
WRITE_RESULT = PolymorphicProxySerializer(
    component_name="StoreWriteResult",
    serializers=[
        DOCUMENT,
        inline_serializer(
            "StoreDocumentBatch",
            {"store": serializers.CharField(), "documents": serializers.ListField(child=serializers.JSONField())},
        ),
    ],
    resource_type_field_name=None,
)
STORE_LIST = inline_serializer("StoreList", {"stores": serializers.ListField(child=serializers.JSONField())})
OK_RESPONSE = inline_serializer("StoreOk", {"ok": serializers.BooleanField()})
# Besides the common errors (amodal_site.schema): the scope, the store named in the URL.
SCOPE_ERRORS = ("invalid_scope", "scope_required", "scope_forbidden", "forbidden")
STORE_ERRORS = (*SCOPE_ERRORS, "store_not_found")
WRITE_ERRORS = ("validation_error", *STORE_ERRORS, "shared_store_read_only", "write_conflict")

# The bundled example agent's (examples/finance-agent/stores/preferences.json).
DOCUMENT_EXAMPLE = {
    "key": "currency",
    "data": {"key": "currency", "value": "EUR"},
    "version": 2,
    "created_at": "2026-05-14T09:12:00+00:00",
    "updated_at": "2026-05-15T10:00:00+00:00",
    "expires_at": None,
    "stale": False,
}
DOCUMENT_BODY_EXAMPLE = {"data": DOCUMENT_EXAMPLE["data"]}


class DocumentBodySerializer(serializers.Serializer):
    # DRF's metaclass moves declared fields off the class: Serializer.data is not shadowed at run time.
    data = serializers.JSONField(  # type: ignore[assignment]
        help_text="The document: an object with the entity's fields."
    )
    scope_id = serializers.CharField(required=False, allow_blank=True, help_text="For API-key callers.")


class CreateBodySerializer(serializers.Serializer):
    data = serializers.JSONField(  # type: ignore[assignment]  # a declared field, not Serializer.data (see above)
        required=False, help_text="One document (its key comes from the template)."
    )
    documents = serializers.ListField(
        child=serializers.JSONField(),
        required=False,
        help_text=f"Up to {services.MAX_BATCH} documents, all or nothing.",
    )
    scope_id = serializers.CharField(required=False, allow_blank=True, help_text="For API-key callers.")


class StoreAPIView(ScopedAPIView):
    """The store named in the URL (404 store_not_found), looked up while the scope is resolved: a shared
    store needs no scope (its documents are global), so requireScope applies only to scoped stores and
    the list."""

    def scope_optional(self, request: Request) -> bool:
        self.definition: StoreDefinition | None = None
        name = self.kwargs.get("name")
        if name is not None:
            self.definition = stores_of(current_agent()).get(name)
            if self.definition is None:
                raise StoreNotFound(name)
        return self.definition is not None and self.definition.shared

    @property
    def named_store(self) -> StoreDefinition:
        """The store named in the URL, for the views whose URL names one."""
        if self.definition is None:
            raise StoreNotFound(str(self.kwargs.get("name")))
        return self.definition

    @property
    def shared_write(self) -> bool:
        return bool(getattr(self.request.user, "shared_write", False))

    def write(self, handler, *args, **kwargs):
        try:
            return self.handle_scoped(handler, *args, **kwargs)
        except DocumentInvalid as exc:
            raise invalid_document(exc)


class StoreList(StoreAPIView):
    @extend_schema(
        operation_id="stores_list",
        summary="The agent's stores, with the scope's document counts",
        description="Every store of the agent folder (its entity, key template, TTL and history), with how many "
        "documents the caller's scope has in each (a shared store: the documents every scope shares).",
        parameters=[SCOPE_PARAM],
        responses={200: STORE_LIST, **errors(*SCOPE_ERRORS)},
        examples=[
            OpenApiExample(
                "stores",
                value={
                    "stores": [
                        {
                            "name": "preferences",
                            "description": "The household's preferences, e.g. currency, budget period.",
                            "shared": False,
                            "entity": {
                                "name": "HouseholdPreference",
                                "key": "{key}",
                                "schema": {"key": {"type": "string"}, "value": {"type": "string"}},
                            },
                            "ttl": None,
                            "history": {"versions": 5},
                            "document_count": 3,
                        }
                    ]
                },
                response_only=True,
                status_codes=[200],
            )
        ],
    )
    def get(self, request: Request) -> Response:
        definitions = stores_of(current_agent())
        counts = self.handle_scoped(selectors.document_counts, definitions=definitions)
        return Response(
            {
                "stores": [
                    {**definition_as_dict(definition), "document_count": counts.get(name, 0)}
                    for name, definition in definitions.items()
                ]
            }
        )


WRITE_DOCUMENTS = ("stores.add_storedocument", "stores.change_storedocument")


class StoreDocuments(StoreAPIView):
    operator_permissions = {"POST": WRITE_DOCUMENTS}

    @extend_schema(
        operation_id="store_documents_query",
        parameters=[
            OpenApiParameter("filter", str, description='Field equality as JSON, e.g. {"kind":"expense"}.'),
            OpenApiParameter("sort", str, description="A field, or -field for descending (default: by key)."),
            OpenApiParameter(
                "limit", int, description=f"1 to {selectors.MAX_LIMIT}, default {selectors.DEFAULT_LIMIT}."
            ),
            OpenApiParameter("offset", int, description="Documents to skip, default 0."),
            SCOPE_PARAM,
        ],
        summary="Query a store's documents",
        description="The caller's scope's documents of the store (a shared store's for every scope), filtered by "
        "field equality, sorted, a page at a time (`has_more`: another page follows).",
        responses={200: DOCUMENT_PAGE, **errors("validation_error", *STORE_ERRORS)},
        examples=[
            OpenApiExample(
                "a page",
                value={
                    "store": "preferences",
                    "shared": False,
                    "documents": [DOCUMENT_EXAMPLE],
                    "limit": 50,
                    "offset": 0,
                    "has_more": False,
                },
                response_only=True,
                status_codes=[200],
            )
        ],
    )
    def get(self, request: Request, name: str) -> Response:
        params = request.query_params
        filters = parse_filter(params.get("filter"))
        limit, offset = selectors.parse_page_bounds(params.get("limit"), params.get("offset"))
        page = self.handle_scoped(
            selectors.query_documents,
            definition=self.named_store,
            filters=filters,
            sort=params.get("sort"),
            limit=limit,
            offset=offset,
        )
        return Response({"store": name, "shared": self.named_store.shared, **page.as_dict()})

    @extend_schema(
        operation_id="store_documents_create",
        request=CreateBodySerializer,
        responses={
            201: OpenApiResponse(WRITE_RESULT, description="Created (a batch: at least one document was created)."),
            200: OpenApiResponse(WRITE_RESULT, description="An existing document was replaced (a batch: all were)."),
            **errors(*WRITE_ERRORS),
        },
        summary="Write a document, or a batch",
        description="Write one document (`data`; its key comes from the entity key template) or a batch "
        f"(`documents`, up to {services.MAX_BATCH}, all or nothing: one invalid document writes none). A batch "
        "answers `{store, documents: [...]}`.",
        examples=[
            OpenApiExample("one document", value=DOCUMENT_BODY_EXAMPLE, request_only=True),
            OpenApiExample(
                "a batch",
                value={"documents": [DOCUMENT_EXAMPLE["data"], {"key": "period", "value": "month"}]},
                request_only=True,
            ),
            OpenApiExample("written", value=DOCUMENT_EXAMPLE, response_only=True, status_codes=[201, 200]),
            OpenApiExample(
                "a batch written",
                value={
                    "store": "preferences",
                    "documents": [
                        DOCUMENT_EXAMPLE,
                        {
                            **DOCUMENT_EXAMPLE,
                            "key": "period",
                            "data": {"key": "period", "value": "month"},
                            "version": 1,
                        },
                    ],
                },
                response_only=True,
                status_codes=[201, 200],
            ),
        ],
    )
    def post(self, request: Request, name: str) -> Response:
        body = json_object(request.data)
        definition = self.named_store
        if "documents" in body and "documents" not in definition.schema:
            results = self.write(
                services.put_documents,
                definition=definition,
                documents=body["documents"],
                shared_write=self.shared_write,
            )
            created = any(result.created for result in results)
            return Response(
                {"store": name, "documents": [document_of(result) for result in results]},
                status=201 if created else 200,
            )
        document = document_body(definition, body)
        result = self.write(
            services.put_document, definition=definition, document=document, shared_write=self.shared_write
        )
        return Response(document_of(result), status=201 if result.created else 200)


class StoreDocumentDetail(StoreAPIView):
    operator_permissions = {"PUT": WRITE_DOCUMENTS, "DELETE": ("stores.delete_storedocument",)}

    @extend_schema(
        operation_id="store_document_get",
        summary="Read one document",
        description="The document of this key in the caller's scope (a shared store: the shared one). Another "
        "scope's document is 404 like a missing one.",
        parameters=[SCOPE_PARAM],
        responses={200: DOCUMENT, **errors(*STORE_ERRORS, "document_not_found")},
        examples=[OpenApiExample("a document", value=DOCUMENT_EXAMPLE, response_only=True, status_codes=[200])],
    )
    def get(self, request: Request, name: str, key: str) -> Response:
        document = self.handle_scoped(selectors.get_document, definition=self.named_store, key=key)
        if document is None:
            raise DocumentNotFound(name, key)
        return Response(document.as_dict())

    @extend_schema(
        operation_id="store_document_put",
        summary="Create or replace the document of a key",
        description="Writes the document under this key (which must be the one its entity template makes of it: "
        "else 400 `key_mismatch`), keeping earlier versions as the store's history says.",
        request=DocumentBodySerializer,
        responses={
            200: OpenApiResponse(DOCUMENT, description="Replaced."),
            201: OpenApiResponse(DOCUMENT, description="Created."),
            **errors(*WRITE_ERRORS, "key_mismatch"),
        },
        examples=[
            OpenApiExample("a document", value=DOCUMENT_BODY_EXAMPLE, request_only=True),
            OpenApiExample("written", value=DOCUMENT_EXAMPLE, response_only=True, status_codes=[200, 201]),
        ],
    )
    def put(self, request: Request, name: str, key: str) -> Response:
        document = document_body(self.named_store, json_object(request.data))
        result = self.write(
            services.put_document,
            definition=self.named_store,
            document=document,
            key=key,
            shared_write=self.shared_write,
        )
        return Response(document_of(result), status=201 if result.created else 200)

    @extend_schema(
        operation_id="store_document_delete",
        summary="Delete one document",
        description="Deletes the document of this key (and its history) from the caller's scope.",
        parameters=[SCOPE_PARAM],
        responses={200: OK_RESPONSE, **errors(*STORE_ERRORS, "shared_store_read_only", "document_not_found")},
        examples=[OpenApiExample("deleted", value={"ok": True}, response_only=True, status_codes=[200])],
    )
    def delete(self, request: Request, name: str, key: str) -> Response:
        self.write(services.delete_document, definition=self.named_store, key=key, shared_write=self.shared_write)
        return Response({"ok": True})


# --- Helpers --------------------------------------------------------------------------------------------


def parse_filter(raw: str | None) -> dict[str, Any] | None:
    if raw in (None, ""):
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ApiError(400, "validation_error", 'filter: must be a JSON object, e.g. {"kind":"expense"}.')
    if not isinstance(value, dict):
        raise ApiError(400, "validation_error", 'filter: must be a JSON object, e.g. {"kind":"expense"}.')
    return value


def json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(400, "validation_error", "The request body must be a JSON object.")
    return data


def document_body(definition: StoreDefinition, body: dict[str, Any]) -> Any:
    """The document of a write: `{"data": {...}}`, or the body itself (without `scope_id`) when it has no
    `data` envelope (or when the entity has a field named `data`)."""
    if "data" in body and "data" not in definition.schema:
        return body["data"]
    return {name: value for name, value in body.items() if name != "scope_id" or name in definition.schema}


def document_of(result: services.WriteResult) -> dict[str, Any]:
    return selectors.DocumentView.of(result.document, timezone.now()).as_dict()


def definition_as_dict(definition: StoreDefinition) -> dict[str, Any]:
    return {
        "name": definition.name,
        "description": definition.description,
        "shared": definition.shared,
        "entity": {
            "name": definition.entity_name,
            "key": definition.key_template,
            "schema": {name: field_as_dict(spec) for name, spec in definition.schema.items()},
        },
        "ttl": definition.ttl_seconds,
        "history": {"versions": definition.history_versions},
    }


def field_as_dict(spec: FieldSpec) -> dict[str, Any]:
    """A field spec in the store file's own shape."""
    out: dict[str, Any] = {"type": spec.type}
    if spec.nullable:
        out["nullable"] = True
    if spec.values is not None:
        out["values"] = list(spec.values)
    if spec.item is not None:
        out["item"] = field_as_dict(spec.item)
    if spec.fields is not None:
        out["fields"] = {name: field_as_dict(child) for name, child in spec.fields.items()}
    if spec.min is not None:
        out["min"] = spec.min
    if spec.max is not None:
        out["max"] = spec.max
    return out
