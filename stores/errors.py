"""What can go wrong with a store operation: each is an ApiError (status, code, message), so the HTTP
API answers it as it is and a tool turns it into an error result the model can read."""

from __future__ import annotations

from core.errors import ApiError
from stores.documents import DocumentInvalid


class StoreNotFound(ApiError):
    def __init__(self, name: str) -> None:
        super().__init__(404, "store_not_found", f"No store is named {name!r}.")


class DocumentNotFound(ApiError):
    def __init__(self, store: str, key: str) -> None:
        super().__init__(404, "document_not_found", f"The store {store!r} has no document with key {key!r}.")


class SharedStoreReadOnly(ApiError):
    def __init__(self, store: str) -> None:
        super().__init__(
            403,
            "shared_store_read_only",
            f"The store {store!r} is shared by every scope: only operators (a staff session or an API key "
            "with shared-write) may write it.",
        )


class KeyMismatch(ApiError):
    def __init__(self, given: str, rendered: str, template: str) -> None:
        super().__init__(
            400,
            "key_mismatch",
            f"key: the URL names key {given!r} but the document's key (template {template!r}) is {rendered!r}.",
        )


class QueryInvalid(ApiError):
    def __init__(self, message: str) -> None:
        super().__init__(400, "validation_error", message)


class WriteConflict(ApiError):
    def __init__(self, store: str, key: str) -> None:
        super().__init__(409, "write_conflict", f"Too many concurrent writes to {store}/{key}; try again.")


def invalid_document(error: DocumentInvalid) -> ApiError:
    """A DocumentInvalid as the API's 400 validation_error, every problem named by its field."""
    return ApiError(400, "validation_error", str(error))
