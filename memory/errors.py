"""Memory's errors: each a code and an HTTP status (core.errors), and a message the model can act on."""

from __future__ import annotations

from core.errors import ApiError, NotFound, ValidationFailed


class MemoryBudgetExceeded(ValidationFailed):
    default_code = "memory_budget_exceeded"


class MemoryEntryNotFound(NotFound):
    default_code = "memory_entry_not_found"

    def __init__(self, entry_id: object) -> None:
        super().__init__(f"No memory entry {entry_id} exists in this scope.")


def memory_invalid(message: str) -> ApiError:
    return ValidationFailed(message)
