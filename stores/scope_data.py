"""The stores app's kinds of a scope's data (scoping.scope_data): documents, then their previous versions
(which point to them, so they are erased first). A shared store's documents are the global scope's."""

from __future__ import annotations

from scoping.scope_data import ScopeDataKind, model_rows
from stores.models import StoreDocument, StoreDocumentVersion

DOCUMENT = ScopeDataKind(
    "document",
    StoreDocument,
    model_rows(
        StoreDocument,
        ["store", "key", "data", "version", "created_at", "updated_at", "expires_at"],
        order_by=["store", "key"],
    ),
)
DOCUMENT_VERSION = ScopeDataKind(
    "document_version",
    StoreDocumentVersion,
    model_rows(
        StoreDocumentVersion,
        [("store", "document__store"), ("key", "document__key"), "version", "data", "created_at"],
        order_by=["document_id", "version"],
    ),
)

KINDS = (DOCUMENT, DOCUMENT_VERSION)
