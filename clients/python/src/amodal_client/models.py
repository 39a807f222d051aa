"""The typed results of the REST operations. Each is read from the server's JSON by its `from_json`, with
the field types checked (amodal_client._fields); fields the client does not know are ignored, and every
result keeps the JSON it was read from in `raw`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from amodal_client._fields import Fields


@dataclass(frozen=True, kw_only=True)
class MessageUsage:
    """One message's totals over its model calls (`cost_micros` None when a call had no price)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost_micros: int | None

    @classmethod
    def from_json(cls, data: object, what: str = "usage") -> MessageUsage:
        f = Fields(data, what)
        return cls(
            input_tokens=f.integer("input_tokens"),
            output_tokens=f.integer("output_tokens"),
            cache_read_tokens=f.integer("cache_read_tokens"),
            cache_write_tokens=f.integer("cache_write_tokens"),
            total_tokens=f.integer("total_tokens"),
            cost_micros=f.opt_integer("cost_micros"),
        )


# --- chat --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ToolCall:
    """A finished tool call: `status` "success" with `result`, or "error" with `error`."""

    tool_id: str
    tool_name: str
    parameters: dict[str, Any]
    status: str
    result: str | None
    error: str | None
    duration_ms: int

    @classmethod
    def from_json(cls, data: object, what: str = "a tool call") -> ToolCall:
        f = Fields(data, what)
        return cls(
            tool_id=f.text("tool_id"),
            tool_name=f.text("tool_name"),
            parameters=f.obj("parameters"),
            status=f.text("status"),
            result=f.opt_text("result"),
            error=f.opt_text("error"),
            duration_ms=f.integer("duration_ms"),
        )


@dataclass(frozen=True, kw_only=True)
class StreamError:
    """An error reported while the message ran (the `error` events a stream would have shown)."""

    code: str
    message: str


@dataclass(frozen=True, kw_only=True)
class ChatResult:
    """The answer of `POST /chat/sync`: the whole reply once the message has finished."""

    session_id: str
    response: str
    tool_calls: list[ToolCall]
    usage: MessageUsage
    stop_reason: str
    message_id: str | None
    errors: list[StreamError]
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: object) -> ChatResult:
        f = Fields(data, "the chat result")
        errors = [Fields(item, "an error of the chat result") for item in f.array("errors", [])]
        return cls(
            session_id=f.text("session_id"),
            response=f.text("response"),
            tool_calls=[ToolCall.from_json(item) for item in f.array("tool_calls")],
            usage=MessageUsage.from_json(f.obj("usage"), "the chat result's usage"),
            stop_reason=f.text("stop_reason"),
            message_id=f.opt_text("message_id"),
            errors=[StreamError(code=e.text("code"), message=e.text("message")) for e in errors],
            raw=f.data,
        )


@dataclass(frozen=True, kw_only=True)
class CancelResult:
    """`running`: whether a message of the session was running when the cancel arrived."""

    running: bool

    @classmethod
    def from_json(cls, data: object) -> CancelResult:
        return cls(running=Fields(data, "the cancel answer").flag("running"))


# --- session history ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TokenUsage:
    input_tokens: int
    output_tokens: int
    total_tokens: int


@dataclass(frozen=True, kw_only=True)
class SessionSummary:
    id: str
    title: str
    scope_id: str
    tags: list[str]
    status: str
    message_count: int
    created_at: datetime
    updated_at: datetime
    model: str
    provider: str
    token_usage: TokenUsage
    cost_micros: int | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def fields_of(cls, f: Fields) -> dict[str, Any]:
        usage = Fields(f.obj("token_usage"), f"{f.what}'s token_usage")
        return {
            "id": f.text("id"),
            "title": f.text("title"),
            "scope_id": f.text("scope_id"),
            "tags": f.texts("tags"),
            "status": f.text("status"),
            "message_count": f.integer("message_count"),
            "created_at": f.time("created_at"),
            "updated_at": f.time("updated_at"),
            "model": f.opt_text("model") or "",
            "provider": f.opt_text("provider") or "",
            "token_usage": TokenUsage(
                input_tokens=usage.integer("input_tokens"),
                output_tokens=usage.integer("output_tokens"),
                total_tokens=usage.integer("total_tokens"),
            ),
            "cost_micros": f.opt_integer("cost_micros"),
            "raw": f.data,
        }

    @classmethod
    def from_json(cls, data: object) -> SessionSummary:
        return cls(**cls.fields_of(Fields(data, "a session")))


@dataclass(frozen=True, kw_only=True)
class SessionPage:
    """A page of `sessions.list`, newest first; pass `next_cursor` as `before` for the next (None: last)."""

    sessions: list[SessionSummary]
    next_cursor: str | None


@dataclass(frozen=True, kw_only=True)
class HistoryToolCall:
    tool_id: str
    tool_name: str
    parameters: dict[str, Any]
    status: str
    result: str | None
    error: str | None
    duration_ms: int

    @classmethod
    def from_json(cls, data: object) -> HistoryToolCall:
        f = Fields(data, "a saved tool call")
        return cls(
            tool_id=f.text("toolId"),
            tool_name=f.text("toolName"),
            parameters=f.obj("parameters"),
            status=f.text("status"),
            result=f.opt_text("result"),
            error=f.opt_text("error"),
            duration_ms=f.integer("duration_ms"),
        )


@dataclass(frozen=True, kw_only=True)
class HistoryMessage:
    """A saved message; `interrupted` marks an answer cut off by a disconnect, cancel or crash; `error` is the
    code it ended with (`budget_exceeded` on a user message nothing answered, `model_error`... on a failed
    answer), None when it did not (and from servers that do not send it)."""

    id: str
    role: str  # "user" or "assistant"
    text: str
    timestamp: datetime
    interrupted: bool
    error: str | None = None
    tool_calls: list[HistoryToolCall]

    @classmethod
    def from_json(cls, data: object) -> HistoryMessage:
        f = Fields(data, "a message")
        return cls(
            id=f.text("id"),
            role=f.text("role"),
            text=f.text("text"),
            timestamp=f.time("timestamp"),
            interrupted=f.flag("interrupted", False),
            error=f.opt_text("error"),
            tool_calls=[HistoryToolCall.from_json(call) for call in f.array("toolCalls", [])],
        )


@dataclass(frozen=True, kw_only=True)
class Feedback:
    """A rating of the session (`message_id` None) or of one assistant message, by `user`."""

    message_id: str | None
    rating: int
    comment: str
    user: str

    @classmethod
    def from_json(cls, data: object) -> Feedback:
        f = Fields(data, "a rating")
        return cls(
            message_id=f.opt_text("message_id"),
            rating=f.integer("rating"),
            comment=f.text("comment", ""),
            user=f.text("user"),
        )


@dataclass(frozen=True, kw_only=True)
class SessionDetail(SessionSummary):
    messages: list[HistoryMessage]
    feedback: list[Feedback]

    @classmethod
    def from_json(cls, data: object) -> SessionDetail:
        f = Fields(data, "the session")
        return cls(
            **cls.fields_of(f),
            messages=[HistoryMessage.from_json(item) for item in f.array("messages")],
            feedback=[Feedback.from_json(item) for item in f.array("feedback", [])],
        )


# --- stores ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StoreInfo:
    """A store of the agent: its definition (`entity` in the store file's shape) and the caller's count."""

    name: str
    description: str
    shared: bool
    entity: dict[str, Any]
    ttl: int | None
    document_count: int
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, data: object) -> StoreInfo:
        f = Fields(data, "a store")
        return cls(
            name=f.text("name"),
            description=f.text("description", ""),
            shared=f.flag("shared"),
            entity=f.obj("entity"),
            ttl=f.opt_integer("ttl"),
            document_count=f.integer("document_count"),
            raw=f.data,
        )


@dataclass(frozen=True, kw_only=True)
class StoreDocument:
    """A document; `created` is True when a write made it (False: it replaced one, or it was read)."""

    key: str
    data: dict[str, Any]
    version: int
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None
    stale: bool
    created: bool = False

    @classmethod
    def from_json(cls, data: object, *, created: bool = False) -> StoreDocument:
        f = Fields(data, "a document")
        return cls(
            key=f.text("key"),
            data=f.obj("data"),
            version=f.integer("version"),
            created_at=f.time("created_at"),
            updated_at=f.time("updated_at"),
            expires_at=f.opt_time("expires_at"),
            stale=f.flag("stale", False),
            created=created,
        )


@dataclass(frozen=True, kw_only=True)
class DocumentPage:
    store: str
    shared: bool
    documents: list[StoreDocument]
    limit: int
    offset: int
    has_more: bool

    @classmethod
    def from_json(cls, data: object) -> DocumentPage:
        f = Fields(data, "a page of documents")
        return cls(
            store=f.text("store"),
            shared=f.flag("shared"),
            documents=[StoreDocument.from_json(item) for item in f.array("documents")],
            limit=f.integer("limit"),
            offset=f.integer("offset"),
            has_more=f.flag("has_more"),
        )


# --- memory ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MemoryEntry:
    """A remembered fact; `rank` is set when listed with a search `query` (best first)."""

    id: str
    content: str
    created_at: datetime
    rank: float | None = None
    created: bool = False

    @classmethod
    def from_json(cls, data: object, *, created: bool = False) -> MemoryEntry:
        f = Fields(data, "a memory entry")
        return cls(
            id=f.text("id"),
            content=f.text("content"),
            created_at=f.time("created_at"),
            rank=f.opt_number("rank"),
            created=created,
        )


@dataclass(frozen=True, kw_only=True)
class MemoryListing:
    entries: list[MemoryEntry]
    enabled: bool
    count: int
    total_chars: int
    max_entries: int
    max_total_chars: int

    @classmethod
    def from_json(cls, data: object) -> MemoryListing:
        f = Fields(data, "the memory listing")
        return cls(
            entries=[MemoryEntry.from_json(item) for item in f.array("entries")],
            enabled=f.flag("enabled"),
            count=f.integer("count"),
            total_chars=f.integer("total_chars"),
            max_entries=f.integer("max_entries"),
            max_total_chars=f.integer("max_total_chars"),
        )


# --- credentials -------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Credential:
    """A credential's key and who changed it last; its value is write-only and never answered."""

    key: str
    scope_id: str
    updated_at: datetime
    updated_by: str
    result: str | None = None  # after a write: "created", "replaced" or "unchanged"

    @classmethod
    def from_json(cls, data: object) -> Credential:
        f = Fields(data, "a credential")
        return cls(
            key=f.text("key"),
            scope_id=f.text("scope_id"),
            updated_at=f.time("updated_at"),
            updated_by=f.text("updated_by"),
            result=f.opt_text("result"),
        )


@dataclass(frozen=True, kw_only=True)
class CredentialPage:
    credentials: list[Credential]
    limit: int
    offset: int
    has_more: bool

    @classmethod
    def from_json(cls, data: object) -> CredentialPage:
        f = Fields(data, "a page of credentials")
        return cls(
            credentials=[Credential.from_json(item) for item in f.array("credentials")],
            limit=f.integer("limit"),
            offset=f.integer("offset"),
            has_more=f.flag("has_more"),
        )


# --- scopes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScopeDetails:
    scope_id: str
    label: str
    metadata: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime

    @classmethod
    def from_json(cls, data: object) -> ScopeDetails:
        f = Fields(data, "the scope")
        return cls(
            scope_id=f.text("scope_id"),
            label=f.text("label", ""),
            metadata=f.obj("metadata", {}),
            first_seen_at=f.time("first_seen_at"),
            last_seen_at=f.time("last_seen_at"),
        )


@dataclass(frozen=True, kw_only=True)
class ScopeErased:
    """Rows erased per kind (`usage` rows are kept for billing under an anonymous id)."""

    deleted: dict[str, int]

    @classmethod
    def from_json(cls, data: object) -> ScopeErased:
        deleted = Fields(data, "the erase answer").obj("deleted")
        counts = Fields(deleted, "the erase answer's deleted")
        return cls(deleted={name: counts.integer(name) for name in deleted})
