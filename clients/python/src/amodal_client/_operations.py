"""Every API operation once, as a `Call`: its method, path, query, body and how to read its answer. The sync
and async clients (client.py, async_client.py) send these."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import httpx

from amodal_client._core import Call, created, json_body, ok, reads
from amodal_client._fields import Fields
from amodal_client.errors import ProtocolError
from amodal_client.models import (
    CancelResult,
    ChatResult,
    Credential,
    CredentialPage,
    DocumentPage,
    MemoryEntry,
    MemoryListing,
    ScopeDetails,
    ScopeErased,
    SessionDetail,
    SessionPage,
    SessionSummary,
    StoreDocument,
    StoreInfo,
)

# A streamed answer's own type, and JSON: error answers are JSON (servers before the scope export admitted
# application/x-ndjson alone answered 406 to an Accept naming only that).
STREAM_ACCEPT = "text/event-stream, application/json;q=0.9"
EXPORT_ACCEPT = "application/x-ndjson, application/json;q=0.9"


def segment(value: str) -> str:
    """One path segment, percent-encoded (`/` too: ids are opaque)."""
    return quote(value, safe="")


def query(**values: str | int | None) -> dict[str, str]:
    return {name: str(value) for name, value in values.items() if value is not None}


# --- chat --------------------------------------------------------------------------------------------------


def chat_body(
    message: str,
    session_id: str | None,
    context: Mapping[str, str] | None,
    model: Mapping[str, str] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["session_id"] = session_id
    if context is not None:
        body["context"] = dict(context)
    if model is not None:
        body["model"] = dict(model)
    return body


def chat_stream(
    message: str,
    session_id: str | None = None,
    context: Mapping[str, str] | None = None,
    model: Mapping[str, str] | None = None,
) -> Call[None]:
    return Call(
        "POST",
        "/chat/stream",
        parse=lambda response: None,
        body=chat_body(message, session_id, context, model),
        scope="body",
        accept=STREAM_ACCEPT,
    )


def chat_send(
    message: str,
    session_id: str | None = None,
    context: Mapping[str, str] | None = None,
    model: Mapping[str, str] | None = None,
) -> Call[ChatResult]:
    body = chat_body(message, session_id, context, model)
    return Call("POST", "/chat/sync", parse=reads(ChatResult.from_json), body=body, scope="body")


def cancel(session_id: str) -> Call[CancelResult]:
    path = f"/sessions/{segment(session_id)}/cancel"
    return Call("POST", path, parse=reads(CancelResult.from_json), body={}, scope="body")


# --- session history ---------------------------------------------------------------------------------------


def session_page(response: httpx.Response) -> SessionPage:
    data = json_body(response)
    if not isinstance(data, list):
        raise ProtocolError("The session list is not a JSON array.", status=response.status_code)
    return SessionPage(
        sessions=[SessionSummary.from_json(item) for item in data],
        next_cursor=response.headers.get("X-Next-Cursor") or None,
    )


def sessions_list(
    limit: int | None = None, before: str | None = None, tags: Sequence[str] | None = None
) -> Call[SessionPage]:
    tag_list = ",".join(tags) if tags else None
    return Call("GET", "/sessions/history", parse=session_page, params=query(limit=limit, before=before, tags=tag_list))


def session_path(session_id: str) -> str:
    return f"/sessions/history/{segment(session_id)}"


def session_get(session_id: str) -> Call[SessionDetail]:
    return Call("GET", session_path(session_id), parse=reads(SessionDetail.from_json))


def session_update(session_id: str, title: str | None = None, tags: Sequence[str] | None = None) -> Call[None]:
    body: dict[str, Any] = {}
    if title is not None:
        body["title"] = title
    if tags is not None:
        body["tags"] = list(tags)
    return Call("PATCH", session_path(session_id), parse=ok, body=body)


def session_delete(session_id: str) -> Call[None]:
    return Call("DELETE", session_path(session_id), parse=ok)


def feedback(
    session_id: str, rating: Literal[1, -1], message_id: str | None = None, comment: str | None = None
) -> Call[None]:
    body: dict[str, Any] = {"rating": rating}
    if message_id is not None:
        body["message_id"] = message_id
    if comment is not None:
        body["comment"] = comment
    return Call("POST", f"{session_path(session_id)}/feedback", parse=ok, body=body)


# --- stores ------------------------------------------------------------------------------------------------


def store_list_of(data: object) -> list[StoreInfo]:
    return [StoreInfo.from_json(item) for item in Fields(data, "the store list").array("stores")]


def stores_list() -> Call[list[StoreInfo]]:
    return Call("GET", "/api/stores", parse=reads(store_list_of))


def store_path(name: str, key: str | None = None) -> str:
    path = f"/api/stores/{segment(name)}"
    return path if key is None else f"{path}/{segment(key)}"


def store_query(
    name: str,
    filter: Mapping[str, Any] | None = None,  # the API's own name for it
    sort: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> Call[DocumentPage]:
    encoded = None if filter is None else json.dumps(dict(filter), separators=(",", ":"))
    params = query(filter=encoded, sort=sort, limit=limit, offset=offset)
    return Call("GET", store_path(name), parse=reads(DocumentPage.from_json), params=params)


def store_get(name: str, key: str) -> Call[StoreDocument]:
    return Call("GET", store_path(name, key), parse=reads(StoreDocument.from_json))


def store_put(name: str, key: str, data: Mapping[str, Any]) -> Call[StoreDocument]:
    body = {"data": dict(data)}
    return Call("PUT", store_path(name, key), parse=created(StoreDocument.from_json), body=body)


def store_create(name: str, data: Mapping[str, Any]) -> Call[StoreDocument]:
    body = {"data": dict(data)}
    return Call("POST", store_path(name), parse=created(StoreDocument.from_json), body=body)


def documents_of(response: httpx.Response) -> list[StoreDocument]:
    items = Fields(json_body(response), "the batch answer").array("documents")
    return [StoreDocument.from_json(item) for item in items]


def store_create_many(name: str, documents: Sequence[Mapping[str, Any]]) -> Call[list[StoreDocument]]:
    body = {"documents": [dict(document) for document in documents]}
    return Call("POST", store_path(name), parse=documents_of, body=body)


def store_delete(name: str, key: str) -> Call[None]:
    return Call("DELETE", store_path(name, key), parse=ok)


# --- memory ------------------------------------------------------------------------------------------------


def memory_list(search: str | None = None) -> Call[MemoryListing]:
    return Call("GET", "/api/memory", parse=reads(MemoryListing.from_json), params=query(query=search))


def memory_add(content: str) -> Call[MemoryEntry]:
    return Call("POST", "/api/memory", parse=created(MemoryEntry.from_json), body={"content": content})


def memory_delete(entry_id: str) -> Call[None]:
    return Call("DELETE", f"/api/memory/{segment(entry_id)}", parse=ok)


# --- credentials -------------------------------------------------------------------------------------------


def credentials_list(limit: int | None = None, offset: int | None = None) -> Call[CredentialPage]:
    params = query(limit=limit, offset=offset)
    return Call("GET", "/api/credentials", parse=reads(CredentialPage.from_json), params=params)


def credential_set(key: str, value: str) -> Call[Credential]:
    path = f"/api/credentials/{segment(key)}"
    return Call("PUT", path, parse=reads(Credential.from_json), body={"value": value})


def credential_delete(key: str) -> Call[None]:
    return Call("DELETE", f"/api/credentials/{segment(key)}", parse=ok)


# --- scopes (the URL names the scope: the client's scope_id is not added) ----------------------------------


def scope_path(scope_id: str) -> str:
    return f"/api/scopes/{segment(scope_id)}"


def scope_get(scope_id: str) -> Call[ScopeDetails]:
    return Call("GET", scope_path(scope_id), parse=reads(ScopeDetails.from_json), scope="none")


def scope_update(
    scope_id: str, label: str | None = None, metadata: Mapping[str, Any] | None = None
) -> Call[ScopeDetails]:
    body: dict[str, Any] = {}
    if label is not None:
        body["label"] = label
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return Call("PUT", scope_path(scope_id), parse=reads(ScopeDetails.from_json), body=body, scope="none")


def scope_export(scope_id: str) -> Call[None]:
    path = f"{scope_path(scope_id)}/export"
    return Call("GET", path, parse=lambda response: None, scope="none", accept=EXPORT_ACCEPT)


def scope_erase(scope_id: str) -> Call[ScopeErased]:
    return Call("DELETE", scope_path(scope_id), parse=reads(ScopeErased.from_json), scope="none")
