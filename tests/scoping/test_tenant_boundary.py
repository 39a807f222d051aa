"""The tenant boundary at every entry point (SPEC §2 "Resolution (fail closed)", §3; DESIGN "The scope
boundary").

Three scopes are seeded through the API as their own users would (a session with messages and a tag, a
memory entry, store documents): the global scope `""`, `tenant-a` and `tenant-b`. Attackers then hold
real, validly signed tokens (PyJWT directly, HS256 with the test secret, with `exp`) whose claims name no
tenant, and send `scope_id: "tenant-a"` (and a `context`) in the body or query of every entry point:
chat (SSE, `/chat`, sync), the WebSocket, history, cancel, stores and memory. Every check compares the
rows of each scope (read with `all_scopes`) before and after, and greps every answer for the tenants'
secrets, so a leak in either direction fails.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import jwt
import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.test import Client

from agents.models import Feedback, Message, Session, SessionTag, UsageRecord
from core.tools import Tool, ToolResult
from memory.models import MemoryEntry
from scoping.models import Scope
from scoping.services import create_api_key
from scoping.tokens import mint_token
from stores.models import StoreDocument, StoreDocumentVersion
from tests.stores.conftest import store_agent_folder

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("async_db_cleanup")]

GLOBAL, TENANT_A, TENANT_B = "", "tenant-a", "tenant-b"
SCOPES = (GLOBAL, TENANT_A, TENANT_B)
TIMEOUT = 10
UNKNOWN_SESSION = "00000000-0000-4000-8000-000000000000"
UNKNOWN_MEMORY_ID = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"
BODY_CONTEXT = {"household_id": TENANT_A, "role": "admin"}
MEMORY = {"enabled": True, "maxEntries": 10, "maxTotalChars": 2000}


# A store key only this scope has (without the scope's name in it: error messages echo keys).
ONLY_KEY = {GLOBAL: "solo-global", TENANT_A: "solo-first", TENANT_B: "solo-second"}


def secret(scope_id: str) -> str:
    """A marker that appears in every row seeded for `scope_id` and nowhere else."""
    return f"secret-of-{scope_id or 'global'}"


# --- Tokens ----------------------------------------------------------------------------------------


def sign(claims: dict[str, Any]) -> str:
    """A validly signed JWT with exactly these claims (plus `exp`/`iat` unless given). Signed as raw JWS
    bytes, so claims PyJWT's encoder would refuse (a non-string `iss`) can be sent too."""
    now = int(time.time())
    payload = json.dumps({"iat": now, "exp": now + 600, **claims}).encode()
    return jwt.api_jws.encode(payload, django_settings.AMODAL_JWT_SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# The attack: a real token that names no tenant. Each must act in the global scope, never the body's.
UNSCOPED_CLAIMS = {
    "no-scope-claim": {"sub": "attacker"},
    "scope-null": {"sub": "attacker", "scope_id": None},
    "scope-empty": {"sub": "attacker", "scope_id": ""},
    "no-scope-claim-no-sub": {},
    "scope-null-context-null": {"sub": "attacker", "scope_id": None, "scopeContext": None},
}
UNSCOPED = list(UNSCOPED_CLAIMS)


def unscoped_token(variant: str) -> str:
    return sign(UNSCOPED_CLAIMS[variant])


def scoped_token(scope_id: str, context: dict[str, str] | None = None) -> str:
    return sign({"sub": f"user-of-{scope_id or 'global'}", "scope_id": scope_id, "scopeContext": context or {}})


# Claims that must be refused with 401 invalid_token, whatever the body says.
MALFORMED_CLAIMS = {
    "scope-int": {"scope_id": 5},
    "scope-true": {"scope_id": True},
    "scope-false": {"scope_id": False},
    "scope-list": {"scope_id": []},
    "scope-list-of-tenant": {"scope_id": [TENANT_A]},
    "scope-object": {"scope_id": {}},
    "scope-float": {"scope_id": 1.5},
    "scope-too-long": {"scope_id": "x" * 256},
    "scope-newline": {"scope_id": "tenant-a\nx"},
    "scope-nul": {"scope_id": "tenant\x00a"},
    "context-string": {"scope_id": TENANT_B, "scopeContext": "x"},
    "context-list": {"scope_id": TENANT_B, "scopeContext": ["a"]},
    "context-int-value": {"scope_id": TENANT_B, "scopeContext": {"k": 5}},
    "context-null-value": {"scope_id": TENANT_B, "scopeContext": {"k": None}},
    "context-nested": {"scope_id": TENANT_B, "scopeContext": {"k": {"scope_id": TENANT_A}}},
    "context-without-scope-claim": {"scopeContext": "x"},
    "sub-int": {"scope_id": TENANT_B, "sub": 5},
    "sub-null": {"scope_id": TENANT_B, "sub": None},
    "sub-object": {"sub": {"scope_id": TENANT_A}},
}


def malformed_token(case: str) -> str:
    return sign({"sub": "attacker", **MALFORMED_CLAIMS[case]})


# --- The agent and the seeded scopes -----------------------------------------------------------------


@dataclass
class Seed:
    scope_id: str
    session_id: str
    memory_id: str  # the entry's public id (a UUID)
    headers: dict[str, str]


@pytest.fixture
def boundary_agent(tmp_path, use_agent):
    """Stores (scoped and shared) and memory; no requireScope, so a token without a scope is served in
    the global scope."""
    return use_agent(store_agent_folder(tmp_path / "agent", memory=MEMORY))


@pytest.fixture
def require_scope_agent(tmp_path, use_agent):
    return use_agent(store_agent_folder(tmp_path / "agent", require_scope=True, memory=MEMORY))


def put_json(client: Client, method: str, path: str, body: Any, headers: dict[str, str]):
    return getattr(client, method)(path, json.dumps(body), content_type="application/json", headers=headers)


def seed_scope(chat, scope_id: str) -> Seed:
    """What `scope_id`'s own user makes through the API: a session (two messages, a tag), a memory entry,
    two preferences (one under a key only this scope has)."""
    headers = bearer(scoped_token(scope_id))
    client = Client()
    result = chat.stream({"message": f"/say hello {secret(scope_id)}"}, headers)
    assert result.status == 200, result.body
    assert result.events[0]["scope_id"] == scope_id
    session_id = result.events[0]["session_id"]
    patched = put_json(
        client,
        "patch",
        f"/sessions/history/{session_id}",
        {"title": f"title {secret(scope_id)}", "tags": [f"tag-{secret(scope_id)}"]},
        headers,
    )
    assert patched.status_code == 200, patched.content
    entry = put_json(client, "post", "/api/memory", {"content": f"fact {secret(scope_id)}"}, headers)
    assert entry.status_code == 201, entry.content
    for key in ("currency", ONLY_KEY[scope_id]):
        document = put_json(
            client, "put", f"/api/stores/preferences/{key}", {"data": {"key": key, "value": secret(scope_id)}}, headers
        )
        assert document.status_code == 201, document.content
    return Seed(scope_id, session_id, entry.json()["id"], headers)


def seed_all(chat) -> dict[str, Seed]:
    seeds = {scope_id: seed_scope(chat, scope_id) for scope_id in SCOPES}
    assert len({seed.session_id for seed in seeds.values()}) == 3
    return seeds


@pytest.fixture
def seeds(boundary_agent, chat) -> dict[str, Seed]:
    return seed_all(chat)


@pytest.fixture
def tool_sees(register_tools) -> list[tuple[str, dict]]:
    """A tool `t_context` that records the scope and context it runs with (what every tool sees)."""
    seen: list[tuple[str, dict]] = []

    async def handler(context, arguments):
        seen.append((context.scope_id, dict(context.scope_context)))
        return ToolResult("ok")

    register_tools(Tool("t_context", "Shows its scope and context.", {"type": "object"}, handler))
    return seen


def rows_of(scope_id: str) -> dict[str, list]:
    """Every row of one scope, in a comparable form (operator access: all_scopes)."""
    return {
        "sessions": sorted(
            (
                str(s.pk),
                s.title,
                json.dumps(s.tags),
                s.status,
                s.message_count,
                s.updated_at.isoformat(),
                s.lock_token,
                s.input_tokens + s.output_tokens,
            )
            for s in Session.all_scopes.filter(scope=scope_id)
        ),
        "messages": sorted(
            (str(session_id), seq, role, text, interrupted)
            for session_id, seq, role, text, interrupted in Message.all_scopes.filter(scope=scope_id).values_list(
                "session_id", "seq", "role", "text", "interrupted"
            )
        ),
        "tags": sorted(
            (str(s), t) for s, t in SessionTag.all_scopes.filter(scope=scope_id).values_list("session_id", "tag")
        ),
        "usage": sorted(UsageRecord.all_scopes.filter(scope=scope_id).values_list("pk", flat=True)),
        "feedback": sorted(
            (str(s), r, c)
            for s, r, c in Feedback.all_scopes.filter(scope=scope_id).values_list("session_id", "rating", "comment")
        ),
        "memory": sorted(MemoryEntry.all_scopes.filter(scope=scope_id).values_list("pk", "content")),
        "documents": sorted(
            (store, key, version, json.dumps(data, sort_keys=True))
            for store, key, version, data in StoreDocument.all_scopes.filter(scope=scope_id).values_list(
                "store", "key", "version", "data"
            )
        ),
        "versions": sorted(StoreDocumentVersion.all_scopes.filter(scope=scope_id).values_list("pk", flat=True)),
        # The scope registry's activity stamp: a request acting elsewhere must not touch it either.
        "registry": [
            seen.isoformat() for seen in Scope.objects.filter(scope_id=scope_id).values_list("last_seen_at", flat=True)
        ],
    }


def everything() -> dict[str, Any]:
    """Every scope's rows and the scope registry: for "nothing was written anywhere"."""
    scope_ids = sorted(
        set(Session.all_scopes.values_list("scope", flat=True))
        | set(MemoryEntry.all_scopes.values_list("scope", flat=True))
        | set(StoreDocument.all_scopes.values_list("scope", flat=True))
        | set(SCOPES)
    )
    return {
        "scopes": sorted(
            (scope_id, seen.isoformat()) for scope_id, seen in Scope.objects.values_list("scope_id", "last_seen_at")
        ),
        "rows": {scope_id: rows_of(scope_id) for scope_id in scope_ids},
    }


def tenants_rows() -> dict[str, dict[str, list]]:
    return {scope_id: rows_of(scope_id) for scope_id in (TENANT_A, TENANT_B)}


def assert_no_tenant_secret(text: str, *, allowed: str = GLOBAL, names: bool = True) -> None:
    """No seeded secret of a scope other than `allowed` in an answer, and (with `names`: where the caller's
    own input is not echoed) no other tenant's name."""
    for scope_id in SCOPES:
        if scope_id != allowed:
            assert secret(scope_id) not in text, f"{secret(scope_id)} leaked: {text[:2000]}"
    for name in (TENANT_A, TENANT_B) if names else ():
        if name != allowed:
            assert name not in text, f"{name} appears in the answer: {text[:2000]}"


def assert_error(body: dict, code: str) -> None:
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


# --- Calling every entry point ---------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    text: str  # the JSON body, or the event stream's frames
    events: list[dict]

    def json(self) -> Any:
        return json.loads(self.text)


def call(
    chat,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    *,
    body: Any = None,
    query: dict[str, str] | None = None,
    client: Client | None = None,
) -> Answer:
    """One request. Chat and cancel go through the async client (their views are async); the DRF views
    through `client` (a staff session's cookie) or a fresh Client."""
    if query:
        path = f"{path}?{urlencode(query)}"
    if path.startswith("/chat") or path.endswith("/cancel"):
        assert method == "post" and client is None
        result = chat.post(path, body if body is not None else {}, headers or {})
        text = result.body.decode() if result.body else "\n\n".join(result.frames)
        return Answer(result.status, text, result.events)
    client = client or Client()
    if method in ("get", "delete"):
        response = getattr(client, method)(path, headers=headers or {})
    else:
        response = put_json(client, method, path, body if body is not None else {}, headers or {})
    return Answer(response.status_code, response.content.decode(), [])


def entry_points(seeds: dict[str, Seed], target: str = TENANT_A) -> dict[str, tuple[str, str, dict]]:
    """Every HTTP entry point, aimed at `target`'s rows: (method, path, body-or-query), the body or query
    naming `target` as the scope (and a context)."""
    seed = seeds[target]
    sid, mid = seed.session_id, seed.memory_id
    body = {"scope_id": target, "context": {"household_id": target}}
    query = {"scope_id": target}
    only = ONLY_KEY[target]
    return {
        "chat-stream-new": ("post", "/chat/stream", {**body, "message": "/say hi"}),
        "chat-new": ("post", "/chat", {**body, "message": "/say hi"}),
        "chat-sync-new": ("post", "/chat/sync", {**body, "message": "/say hi"}),
        "chat-stream-session": ("post", "/chat/stream", {**body, "message": "/say hi", "session_id": sid}),
        "chat-sync-session": ("post", "/chat/sync", {**body, "message": "/say hi", "session_id": sid}),
        "history-list": ("get", "/sessions/history", query),
        "history-detail": ("get", f"/sessions/history/{sid}", query),
        "history-patch": ("patch", f"/sessions/history/{sid}", {**body, "title": "pwned", "tags": ["pwned"]}),
        "history-delete": ("delete", f"/sessions/history/{sid}", query),
        "history-feedback": ("post", f"/sessions/history/{sid}/feedback", {**body, "rating": -1, "comment": "pwned"}),
        "cancel": ("post", f"/sessions/{sid}/cancel", body),
        "stores-list": ("get", "/api/stores", query),
        "store-documents": ("get", "/api/stores/preferences", query),
        "store-document-get": ("get", f"/api/stores/preferences/{only}", query),
        "store-document-put": (
            "put",
            f"/api/stores/preferences/{only}",
            {"scope_id": target, "data": {"key": only, "value": "pwned"}},
        ),
        "store-document-post": (
            "post",
            "/api/stores/preferences",
            {"scope_id": target, "data": {"key": only, "value": "pwned"}},
        ),
        "store-document-delete": ("delete", f"/api/stores/preferences/{only}", query),
        "memory-list": ("get", "/api/memory", query),
        "memory-add": ("post", "/api/memory", {"scope_id": target, "content": "pwned fact"}),
        "memory-delete": ("delete", f"/api/memory/{mid}", query),
    }


def send(
    chat,
    seeds: dict[str, Seed],
    name: str,
    headers: dict[str, str],
    *,
    target: str = TENANT_A,
    client: Client | None = None,
) -> Answer:
    method, path, payload = entry_points(seeds, target)[name]
    if method in ("get", "delete"):
        return call(chat, method, path, headers, query=payload, client=client)
    return call(chat, method, path, headers, body=payload, client=client)


ENTRY_POINTS = list(entry_points({s: Seed(s, UNKNOWN_SESSION, 1, {}) for s in SCOPES}))


# --- WebSocket -------------------------------------------------------------------------------------------


async def ws_connect(path: str = "/ws/chat") -> WebsocketCommunicator:
    from amodal_site.asgi import application

    communicator = WebsocketCommunicator(application, path)
    connected, _ = await communicator.connect(timeout=TIMEOUT)
    assert connected
    return communicator


async def ws_authenticate(token: str, via: str) -> tuple[WebsocketCommunicator, dict]:
    """Open /ws/chat with the token in the query or in a first `auth` message; the first reply."""
    if via == "query":
        communicator = await ws_connect(f"/ws/chat?token={quote(token)}")
    else:
        communicator = await ws_connect()
        await communicator.send_json_to({"type": "auth", "token": token})
    return communicator, await communicator.receive_json_from(timeout=TIMEOUT)


async def ws_until_done_or_error(communicator: WebsocketCommunicator) -> list[dict]:
    """Events of one message: up to `done`, or a lone `error` (refused before it started)."""
    events = []
    while True:
        item = await communicator.receive_json_from(timeout=TIMEOUT)
        events.append(item)
        if item["type"] == "done" or (item["type"] == "error" and len(events) == 1):
            return events


async def ws_close_code(communicator: WebsocketCommunicator) -> int:
    output = await communicator.receive_output(timeout=TIMEOUT)
    assert output["type"] == "websocket.close", output
    return output["code"]


def ws_messages(token: str, via: str, frames: list[dict]) -> tuple[dict, list[list[dict]]]:
    """Authenticate, send each frame as a message, collect each one's events."""

    async def talk():
        communicator, auth = await ws_authenticate(token, via)
        assert auth["type"] == "auth_ok", auth
        replies = []
        for frame in frames:
            await communicator.send_json_to({"type": "message", **frame})
            replies.append(await ws_until_done_or_error(communicator))
        await communicator.disconnect()
        return auth, replies

    return asyncio.run(talk())


def without_timestamp(item: dict) -> dict:
    return {key: value for key, value in item.items() if key != "timestamp"}


# =========================================================================================================
# 1. A token whose claims name no tenant acts in the global scope, whatever the body says
# =========================================================================================================


@pytest.mark.parametrize("path", ["/chat/stream", "/chat"])
@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_chat_creates_its_session_in_the_global_scope(seeds, chat, tool_sees, path, variant):
    before = tenants_rows()
    body = {"message": "/tool t_context {}", "scope_id": TENANT_A, "context": BODY_CONTEXT}
    answer = call(chat, "post", path, bearer(unscoped_token(variant)), body=body)

    assert answer.status == 200, answer.text
    init, done = answer.events[0], answer.events[-1]
    assert init["type"] == "init" and init["scope_id"] == GLOBAL
    assert done["type"] == "done" and done["reason"] == "model_stop"
    assert Session.all_scopes.get(pk=init["session_id"]).scope == GLOBAL
    assert set(Message.all_scopes.filter(session_id=init["session_id"]).values_list("scope", flat=True)) == {GLOBAL}
    assert tool_sees == [(GLOBAL, {})]  # the tool ran in "", with none of the body's context
    assert tenants_rows() == before
    assert_no_tenant_secret(answer.text)


@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_chat_sync_acts_in_the_global_scope(seeds, chat, tool_sees, variant):
    before = tenants_rows()
    body = {"message": "/tool t_context {}", "scope_id": TENANT_A, "context": BODY_CONTEXT}
    answer = call(chat, "post", "/chat/sync", bearer(unscoped_token(variant)), body=body)

    assert answer.status == 200, answer.text
    session = Session.all_scopes.get(pk=answer.json()["session_id"])
    assert session.scope == GLOBAL
    assert tool_sees == [(GLOBAL, {})]
    assert tenants_rows() == before
    assert_no_tenant_secret(answer.text)


@pytest.mark.parametrize("path", ["/chat/stream", "/chat", "/chat/sync"])
@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_cannot_continue_a_tenant_session(seeds, chat, path, variant):
    headers = bearer(unscoped_token(variant))
    before = tenants_rows()
    body = {"message": "/say hi", "scope_id": TENANT_A, "context": BODY_CONTEXT}
    tenant = call(chat, "post", path, headers, body={**body, "session_id": seeds[TENANT_A].session_id})
    unknown = call(chat, "post", path, headers, body={**body, "session_id": UNKNOWN_SESSION})

    assert tenant.status == 404, tenant.text
    assert_error(tenant.json(), "session_not_found")
    assert tenant.json() == unknown.json()  # another scope's session is exactly as missing as none
    assert tenants_rows() == before


@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_tools_read_and_write_only_global_rows(seeds, chat, variant):
    """The agent's own tools (memory, stores) run in the resolved scope: global, not the body's."""
    headers = bearer(unscoped_token(variant))
    before = tenants_rows()
    a = seeds[TENANT_A]

    def tool(name: str, arguments: dict) -> dict:
        body = {"message": f"/tool {name} {json.dumps(arguments)}", "scope_id": TENANT_A, "context": BODY_CONTEXT}
        answer = call(chat, "post", "/chat/stream", headers, body=body)
        assert answer.status == 200, answer.text
        assert answer.events[0]["scope_id"] == GLOBAL
        [result] = [item for item in answer.events if item["type"] == "tool_call_result"]
        # The tool's parameters (echoed in tool_call_start) are the caller's own; its result is what it read.
        assert_no_tenant_secret(json.dumps(result), names=False)
        assert_no_tenant_secret("".join(e["content"] for e in answer.events if e["type"] == "text_delta"), names=False)
        return result

    listed = tool("memory", {"action": "list"})
    assert listed["status"] == "success" and f"fact {secret(GLOBAL)}" in listed["result"]
    searched = tool("memory", {"action": "search", "query": "fact secret of tenant"})
    assert f"fact {secret(GLOBAL)}" in searched["result"]  # the words match every scope's fact: only ours shows
    removed = tool("memory", {"action": "remove", "entry_id": a.memory_id})
    assert removed["status"] == "error"
    added = tool("memory", {"action": "add", "content": "attacker fact"})
    assert added["status"] == "success"
    got = tool("query_store", {"store": "preferences", "key": "currency"})
    assert secret(GLOBAL) in got["result"]
    missing = tool("query_store", {"store": "preferences", "key": "solo-first"})
    assert '"document": null' in missing["result"]
    page = tool("query_store", {"store": "preferences"})
    assert secret(GLOBAL) in page["result"]
    written = tool("store_preferences", {"key": "solo-first", "value": "pwned"})
    assert written["status"] == "success"

    assert tenants_rows() == before
    assert MemoryEntry.all_scopes.filter(scope=GLOBAL, content="attacker fact").count() == 1
    assert StoreDocument.all_scopes.get(scope=GLOBAL, store="preferences", key="solo-first").data == {
        "key": "solo-first",
        "value": "pwned",
    }


@pytest.mark.parametrize("via", ["query", "auth-message"])
@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_websocket_acts_in_the_global_scope(seeds, tool_sees, via, variant):
    before = tenants_rows()
    frames = [
        {"message": "/tool t_context {}", "scope_id": TENANT_A, "context": BODY_CONTEXT},
        {"message": "/say hi", "scope_id": TENANT_A, "session_id": seeds[TENANT_A].session_id},
        {"message": "/say hi", "scope_id": TENANT_A, "session_id": UNKNOWN_SESSION},
    ]
    auth, (first, tenant, unknown) = ws_messages(unscoped_token(variant), via, frames)

    assert first[0]["type"] == "init" and first[0]["scope_id"] == GLOBAL
    assert first[-1]["type"] == "done" and first[-1]["reason"] == "model_stop"
    assert Session.all_scopes.get(pk=first[0]["session_id"]).scope == GLOBAL
    assert tool_sees == [(GLOBAL, {})]
    assert [item["type"] for item in tenant] == ["error"]
    assert tenant[0]["code"] == "session_not_found"
    assert without_timestamp(tenant[0]) == without_timestamp(unknown[0])
    assert tenants_rows() == before
    assert_no_tenant_secret(json.dumps([auth, first, tenant]))


@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_history_lists_only_global_sessions(seeds, chat, variant):
    headers = bearer(unscoped_token(variant))
    for query in ({"scope_id": TENANT_A}, {"scope_id": TENANT_A, "tags": f"tag-{secret(TENANT_A)}"}, {}):
        answer = call(chat, "get", "/sessions/history", headers, query=query)
        assert answer.status == 200, answer.text
        expected = [] if "tags" in query else [seeds[GLOBAL].session_id]
        assert [item["id"] for item in answer.json()] == expected
        assert all(item["scope_id"] == GLOBAL for item in answer.json())
        assert_no_tenant_secret(answer.text)


@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_cannot_read_change_delete_or_cancel_a_tenant_session(seeds, chat, variant):
    headers = bearer(unscoped_token(variant))
    before = everything()
    tenant_id = seeds[TENANT_A].session_id
    query = {"scope_id": TENANT_A}
    patch = {"scope_id": TENANT_A, "context": BODY_CONTEXT, "title": "pwned", "tags": ["pwned"]}
    for method, path, payload in [
        ("get", "/sessions/history/{}", {"query": query}),
        ("patch", "/sessions/history/{}", {"body": patch}),
        ("delete", "/sessions/history/{}", {"query": query}),
        ("post", "/sessions/{}/cancel", {"body": {"scope_id": TENANT_A, "context": BODY_CONTEXT}}),
    ]:
        tenant = call(chat, method, path.format(tenant_id), headers, **payload)
        unknown = call(chat, method, path.format(UNKNOWN_SESSION), headers, **payload)
        assert tenant.status == 404, (method, path, tenant.text)
        assert_error(tenant.json(), "session_not_found")
        assert tenant.json() == unknown.json(), (method, path)  # nothing tells "exists elsewhere" apart
        assert tenant_id not in tenant.text
    assert everything()["rows"] == before["rows"]


@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_cannot_cancel_a_running_tenant_message(seeds, chat, variant):
    """While tenant-a's message runs, the attacker's cancel (naming tenant-a) is 404 and the message
    runs to its end."""
    from django.test import AsyncClient

    attacker = bearer(unscoped_token(variant))
    cancels: list[Any] = []

    async def cancel_on_init(item):
        if item["type"] == "init" and not cancels:
            response = await AsyncClient().post(
                f"/sessions/{item['session_id']}/cancel",
                json.dumps({"scope_id": TENANT_A}),
                content_type="application/json",
                headers=attacker,
            )
            cancels.append(response)

    async def run():
        return await chat.astream(
            {"message": "/slow 100 one two three four five", "session_id": seeds[TENANT_A].session_id},
            seeds[TENANT_A].headers,
            on_event=cancel_on_init,
        )

    result = asyncio.run(run())
    [cancel] = cancels
    assert cancel.status_code == 404
    assert_error(cancel.json(), "session_not_found")
    assert result.events[-1]["reason"] == "model_stop"
    assert "".join(e["content"] for e in result.events if e["type"] == "text_delta").split() == [
        "one",
        "two",
        "three",
        "four",
        "five",
    ]


@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_store_reads_see_only_global_documents(seeds, chat, variant):
    headers = bearer(unscoped_token(variant))
    query = {"scope_id": TENANT_A}

    stores = call(chat, "get", "/api/stores", headers, query=query)
    assert stores.status == 200, stores.text
    counts = {item["name"]: item["document_count"] for item in stores.json()["stores"]}
    assert counts["preferences"] == 2  # the global scope's two, not tenant-a's

    page = call(chat, "get", "/api/stores/preferences", headers, query=query)
    assert page.status == 200, page.text
    assert sorted((d["key"], d["data"]["value"]) for d in page.json()["documents"]) == [
        ("currency", secret(GLOBAL)),
        ("solo-global", secret(GLOBAL)),
    ]

    same_key = call(chat, "get", "/api/stores/preferences/currency", headers, query=query)
    assert same_key.status == 200 and same_key.json()["data"]["value"] == secret(GLOBAL)

    tenant_only = call(chat, "get", "/api/stores/preferences/solo-first", headers, query=query)
    never = call(chat, "get", "/api/stores/preferences/only-nobody", headers, query=query)
    assert tenant_only.status == 404 and never.status == 404
    assert_error(tenant_only.json(), "document_not_found")
    assert tenant_only.json()["error"]["message"].replace("solo-first", "K") == never.json()["error"][
        "message"
    ].replace("only-nobody", "K")
    filtered = call(
        chat,
        "get",
        "/api/stores/preferences",
        headers,
        query={**query, "filter": json.dumps({"value": secret(TENANT_A)})},
    )
    assert filtered.status == 200 and filtered.json()["documents"] == []
    for answer in (stores, page, same_key, filtered):
        assert_no_tenant_secret(answer.text)


@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_store_writes_land_in_the_global_scope(seeds, chat, variant):
    headers = bearer(unscoped_token(variant))
    before = tenants_rows()
    key = "solo-first"

    put = call(
        chat,
        "put",
        f"/api/stores/preferences/{key}",
        headers,
        body={"scope_id": TENANT_A, "context": BODY_CONTEXT, "data": {"key": key, "value": "pwned-put"}},
    )
    assert put.status == 201, put.text  # created: the global scope had no such key
    assert put.json()["version"] == 1
    posted = call(
        chat,
        "post",
        "/api/stores/preferences",
        headers,
        body={"scope_id": TENANT_A, "data": {"key": "currency", "value": "pwned-post"}},
    )
    assert posted.status == 200 and posted.json()["version"] == 2  # the global currency, replaced
    batch = call(
        chat,
        "post",
        "/api/stores/preferences",
        headers,
        body={"scope_id": TENANT_A, "documents": [{"key": "batch", "value": "pwned-batch"}]},
    )
    assert batch.status == 201, batch.text
    first_delete = call(chat, "delete", f"/api/stores/preferences/{key}", headers, query={"scope_id": TENANT_A})
    second_delete = call(chat, "delete", f"/api/stores/preferences/{key}", headers, query={"scope_id": TENANT_A})
    assert first_delete.status == 200  # the global copy just written
    assert second_delete.status == 404  # tenant-a's copy is out of reach
    assert_error(second_delete.json(), "document_not_found")

    assert tenants_rows() == before
    global_docs = dict(StoreDocument.all_scopes.filter(scope=GLOBAL, store="preferences").values_list("key", "data"))
    assert global_docs["currency"]["value"] == "pwned-post"
    assert global_docs["batch"]["value"] == "pwned-batch"
    assert key not in global_docs


@pytest.mark.parametrize("variant", UNSCOPED)
def test_unscoped_token_memory_sees_and_writes_only_global_entries(seeds, chat, variant):
    headers = bearer(unscoped_token(variant))
    before = tenants_rows()
    query = {"scope_id": TENANT_A}

    listed = call(chat, "get", "/api/memory", headers, query=query)
    assert listed.status == 200, listed.text
    assert [entry["content"] for entry in listed.json()["entries"]] == [f"fact {secret(GLOBAL)}"]
    assert listed.json()["count"] == 1
    searched = call(chat, "get", "/api/memory", headers, query={**query, "query": secret(TENANT_A)})
    assert searched.status == 200
    assert all(entry["id"] != seeds[TENANT_A].memory_id for entry in searched.json()["entries"])

    added = call(
        chat,
        "post",
        "/api/memory",
        headers,
        body={"scope_id": TENANT_A, "context": BODY_CONTEXT, "content": "attacker fact"},
    )
    assert added.status == 201, added.text
    assert MemoryEntry.all_scopes.get(public_id=added.json()["id"]).scope == GLOBAL

    tenant = call(chat, "delete", f"/api/memory/{seeds[TENANT_A].memory_id}", headers, query=query)
    unknown = call(chat, "delete", f"/api/memory/{UNKNOWN_MEMORY_ID}", headers, query=query)
    assert tenant.status == 404 and unknown.status == 404
    assert_error(tenant.json(), "memory_entry_not_found")
    assert tenant.json()["error"]["message"].replace(str(seeds[TENANT_A].memory_id), "N") == unknown.json()["error"][
        "message"
    ].replace(UNKNOWN_MEMORY_ID, "N")

    assert tenants_rows() == before
    for answer in (listed, searched, added, tenant):
        assert_no_tenant_secret(answer.text)


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_unscoped_token_never_touches_a_tenant_at_any_entry_point(seeds, chat, name):
    """One table over every entry point: whatever each answers, tenant-a and tenant-b are unchanged and
    nothing of theirs is in the answer."""
    before = tenants_rows()
    answer = send(chat, seeds, name, bearer(unscoped_token("no-scope-claim")))
    assert answer.status in (200, 201, 404), (name, answer.status, answer.text)
    if answer.status == 404:
        assert answer.json()["error"]["code"] in ("session_not_found", "document_not_found", "memory_entry_not_found")
    assert tenants_rows() == before
    assert_no_tenant_secret(answer.text)


# =========================================================================================================
# 2. A token for tenant-b acts in tenant-b, whatever the body says
# =========================================================================================================


def test_a_tenant_b_token_acts_in_tenant_b_whatever_the_body_names(seeds, chat, tool_sees):
    headers = bearer(scoped_token(TENANT_B, {"household_id": TENANT_B}))
    before_a = rows_of(TENANT_A)
    b = seeds[TENANT_B]
    query = {"scope_id": TENANT_A}

    stream = call(
        chat,
        "post",
        "/chat/stream",
        headers,
        body={"message": "/tool t_context {}", "scope_id": TENANT_A, "context": BODY_CONTEXT},
    )
    assert stream.status == 200 and stream.events[0]["scope_id"] == TENANT_B
    assert tool_sees == [(TENANT_B, {"household_id": TENANT_B})]

    history = call(chat, "get", "/sessions/history", headers, query=query)
    assert {item["id"] for item in history.json()} == {b.session_id, stream.events[0]["session_id"]}
    assert call(chat, "get", f"/sessions/history/{seeds[TENANT_A].session_id}", headers, query=query).status == 404
    assert call(chat, "get", f"/sessions/history/{b.session_id}", headers, query=query).status == 200
    memory = call(chat, "get", "/api/memory", headers, query=query)
    assert [entry["content"] for entry in memory.json()["entries"]] == [f"fact {secret(TENANT_B)}"]
    page = call(chat, "get", "/api/stores/preferences", headers, query=query)
    assert {d["key"] for d in page.json()["documents"]} == {"currency", "solo-second"}
    put = call(
        chat,
        "put",
        "/api/stores/preferences/solo-first",
        headers,
        body={"scope_id": TENANT_A, "data": {"key": "solo-first", "value": "from-b"}},
    )
    assert put.status == 201
    assert StoreDocument.all_scopes.get(scope=TENANT_B, key="solo-first").data["value"] == "from-b"
    (_, [events]) = ws_messages(
        headers["Authorization"].split()[1], "query", [{"message": "/say hi", "scope_id": TENANT_A}]
    )
    assert events[0]["scope_id"] == TENANT_B

    assert rows_of(TENANT_A) == before_a
    for answer in (stream, history, memory, page, put):
        assert_no_tenant_secret(answer.text, allowed=TENANT_B)


# =========================================================================================================
# 3. The claims' scopeContext replaces the body's context whole
# =========================================================================================================

CONTEXT_CASES = {
    # (claims, body context, (scope, context) the tools see)
    "no-scope-claim-with-context": (
        {"scopeContext": {"k": "claim"}},
        {"k": "body", "x": "y"},
        (GLOBAL, {"k": "claim"}),
    ),
    "no-scope-claim-no-context": ({}, {"k": "body"}, (GLOBAL, {})),
    "scope-null-with-context": (
        {"scope_id": None, "scopeContext": {"k": "claim"}},
        {"k": "body"},
        (GLOBAL, {"k": "claim"}),
    ),
    "scope-empty-empty-context": ({"scope_id": "", "scopeContext": {}}, {"household_id": TENANT_A}, (GLOBAL, {})),
    "tenant-b-with-context": (
        {"scope_id": TENANT_B, "scopeContext": {"household_id": TENANT_B}},
        {"household_id": TENANT_A, "extra": "x"},
        (TENANT_B, {"household_id": TENANT_B}),
    ),
    "tenant-b-context-null": ({"scope_id": TENANT_B, "scopeContext": None}, {"household_id": TENANT_A}, (TENANT_B, {})),
    "malformed-body-context": ({"scope_id": TENANT_B, "scopeContext": {"a": "1"}}, {"n": 1}, (TENANT_B, {"a": "1"})),
    "body-context-a-string": ({}, "household_id=tenant-a", (GLOBAL, {})),
}


@pytest.mark.parametrize("transport", ["sse", "sync", "websocket"])
@pytest.mark.parametrize("case", list(CONTEXT_CASES))
def test_claims_context_wins_over_the_body_context(boundary_agent, chat, tool_sees, case, transport):
    claims, body_context, expected = CONTEXT_CASES[case]
    token = sign({"sub": "u", **claims})
    body = {"message": "/tool t_context {}", "scope_id": TENANT_A, "context": body_context}
    if transport == "websocket":
        _, [events] = ws_messages(token, "auth-message", [body])
        assert events[0]["type"] == "init", events
    else:
        answer = call(chat, "post", "/chat/stream" if transport == "sse" else "/chat/sync", bearer(token), body=body)
        assert answer.status == 200, answer.text
    assert tool_sees == [expected]


# =========================================================================================================
# 4. Malformed claims are 401 invalid_token everywhere, and nothing is written
# =========================================================================================================


@pytest.mark.parametrize("case", list(MALFORMED_CLAIMS))
def test_malformed_claims_are_401_on_every_http_entry_point(seeds, chat, case):
    headers = bearer(malformed_token(case))
    before = everything()
    for name in ENTRY_POINTS:
        answer = send(chat, seeds, name, headers)
        assert answer.status == 401, (name, answer.status, answer.text)
        assert_error(answer.json(), "invalid_token")
        assert_no_tenant_secret(answer.text)
    assert everything() == before


@pytest.mark.parametrize("via", ["query", "auth-message"])
@pytest.mark.parametrize("case", list(MALFORMED_CLAIMS))
def test_malformed_claims_close_the_websocket_with_4401(seeds, case, via):
    before = everything()

    async def talk():
        communicator, first = await ws_authenticate(malformed_token(case), via)
        return first, await ws_close_code(communicator)

    first, code = asyncio.run(talk())
    assert first["type"] == "error" and first["code"] == "invalid_token", first
    assert code == 4401
    assert everything() == before


# =========================================================================================================
# 5. Audience and issuer, when configured
# =========================================================================================================

AUDIENCE, ISSUER = "amodal-test", "https://saas.example"
AUD_ISS_CASES = {
    # (extra claims, accepted?)
    "right-aud-and-iss": ({"aud": AUDIENCE, "iss": ISSUER}, True),
    "aud-list-with-ours": ({"aud": ["other-app", AUDIENCE], "iss": ISSUER}, True),
    "no-aud": ({"iss": ISSUER}, False),
    "wrong-aud": ({"aud": "other-app", "iss": ISSUER}, False),
    "aud-list-without-ours": ({"aud": ["other-app"], "iss": ISSUER}, False),
    "empty-aud": ({"aud": "", "iss": ISSUER}, False),
    "aud-case-differs": ({"aud": AUDIENCE.upper(), "iss": ISSUER}, False),
    "no-iss": ({"aud": AUDIENCE}, False),
    "wrong-iss": ({"aud": AUDIENCE, "iss": "https://evil.example"}, False),
    "iss-with-trailing-slash": ({"aud": AUDIENCE, "iss": ISSUER + "/"}, False),
    "iss-not-a-string": ({"aud": AUDIENCE, "iss": ["https://saas.example"]}, False),
    "neither": ({}, False),
}


@pytest.fixture
def aud_iss(settings):
    settings.AMODAL_JWT_AUDIENCE = AUDIENCE
    settings.AMODAL_JWT_ISSUER = ISSUER


@pytest.mark.parametrize("case", list(AUD_ISS_CASES))
def test_audience_and_issuer_are_required_when_configured(seeds, chat, aud_iss, case):
    extra, accepted = AUD_ISS_CASES[case]
    headers = bearer(sign({"sub": "u", "scope_id": TENANT_B, **extra}))
    before = everything()
    answers = {
        name: send(chat, seeds, name, headers, target=TENANT_B)
        for name in ("history-list", "memory-list", "stores-list", "chat-sync-new", "chat-stream-new")
    }
    for name, answer in answers.items():
        if accepted:
            assert answer.status == 200, (name, answer.text)
        else:
            assert answer.status == 401, (name, answer.status, answer.text)
            assert_error(answer.json(), "invalid_token")
    if not accepted:
        assert everything() == before


@pytest.mark.parametrize("case", ["right-aud-and-iss", "no-aud", "wrong-aud", "wrong-iss", "no-iss"])
def test_websocket_checks_audience_and_issuer(boundary_agent, aud_iss, case):
    extra, accepted = AUD_ISS_CASES[case]
    token = sign({"sub": "u", "scope_id": TENANT_B, **extra})

    async def talk():
        communicator, first = await ws_authenticate(token, "query")
        if first["type"] == "auth_ok":
            await communicator.disconnect()
            return first, None
        return first, await ws_close_code(communicator)

    first, code = asyncio.run(talk())
    if accepted:
        assert first["type"] == "auth_ok"
    else:
        assert (first["type"], first["code"], code) == ("error", "invalid_token", 4401)


def test_mint_token_adds_the_configured_audience_and_issuer_and_is_accepted(seeds, chat, aud_iss):
    token = mint_token(scope_id=TENANT_B, context={"household_id": TENANT_B})
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["aud"], claims["iss"]) == (AUDIENCE, ISSUER)
    history = call(chat, "get", "/sessions/history", bearer(token))
    assert history.status == 200
    assert [item["id"] for item in history.json()] == [seeds[TENANT_B].session_id]


def test_a_token_minted_before_the_audience_was_configured_is_refused(seeds, chat, settings):
    token = mint_token(scope_id=TENANT_B)  # no aud / iss yet
    assert call(chat, "get", "/sessions/history", bearer(token)).status == 200
    settings.AMODAL_JWT_AUDIENCE = AUDIENCE
    answer = call(chat, "get", "/sessions/history", bearer(token))
    assert answer.status == 401
    assert_error(answer.json(), "invalid_token")
    settings.AMODAL_JWT_AUDIENCE = ""
    settings.AMODAL_JWT_ISSUER = ISSUER
    assert call(chat, "get", "/sessions/history", bearer(token)).status == 401


# =========================================================================================================
# 6. requireScope: a token without a scope is refused before anything is written, whatever the body says
# =========================================================================================================


@pytest.fixture
def require_scope_seeds(require_scope_agent, chat) -> dict[str, Seed]:
    """tenant-a and tenant-b seeded under a requireScope agent (the global scope cannot be)."""
    return {scope_id: seed_scope(chat, scope_id) for scope_id in (TENANT_A, TENANT_B)}


@pytest.mark.parametrize("variant", UNSCOPED)
def test_require_scope_refuses_an_unscoped_token_with_a_body_scope_everywhere(require_scope_seeds, chat, variant):
    headers = bearer(unscoped_token(variant))
    before = everything()
    seeds = {GLOBAL: Seed(GLOBAL, UNKNOWN_SESSION, 1, {}), **require_scope_seeds}
    for name in ENTRY_POINTS:
        answer = send(chat, seeds, name, headers)
        assert answer.status == 400, (name, answer.status, answer.text)
        assert_error(answer.json(), "scope_required")
    assert everything() == before


@pytest.mark.parametrize("via", ["query", "auth-message"])
@pytest.mark.parametrize("variant", UNSCOPED)
def test_require_scope_refuses_an_unscoped_websocket_message_with_a_body_scope(require_scope_seeds, via, variant):
    before = everything()
    _, [reply] = ws_messages(
        unscoped_token(variant), via, [{"message": "/say hi", "scope_id": TENANT_A, "context": BODY_CONTEXT}]
    )
    assert [item["type"] for item in reply] == ["error"]
    assert reply[0]["code"] == "scope_required"
    assert everything() == before


# =========================================================================================================
# 7. Staff sessions need Django permissions; the staff flag alone allows nothing
# =========================================================================================================

READS = ["history-list", "history-detail", "stores-list", "store-documents", "store-document-get", "memory-list"]
STAFF_WRITES = [
    "history-patch",
    "history-delete",
    "store-document-put",
    "store-document-post",
    "store-document-delete",
    "memory-add",
    "memory-delete",
]
# The permission each write needs (scoping.permissions, the views' operator_permissions).
WRITE_PERMISSIONS = {
    "history-patch": ("agents.change_session",),
    "history-delete": ("agents.delete_session",),
    "store-document-put": ("stores.add_storedocument", "stores.change_storedocument"),
    "store-document-post": ("stores.add_storedocument", "stores.change_storedocument"),
    "store-document-delete": ("stores.delete_storedocument",),
    "memory-add": ("memory.add_memoryentry",),
    "memory-delete": ("memory.delete_memoryentry",),
}


def view_studio_permission():
    """`studio.view_studio`: from the studio migration when it exists, else made here (same label)."""
    from django.contrib.auth.models import Permission
    from django.contrib.contenttypes.models import ContentType

    existing = Permission.objects.filter(content_type__app_label="studio", codename="view_studio").first()
    if existing is not None:
        return existing
    content_type, _ = ContentType.objects.get_or_create(app_label="studio", model="studioaccess")
    permission, _ = Permission.objects.get_or_create(
        content_type=content_type, codename="view_studio", defaults={"name": "Can view Studio"}
    )
    return permission


def permissions(*names: str) -> list:
    from django.contrib.auth.models import Permission

    found = []
    for name in names:
        if name == "studio.view_studio":
            found.append(view_studio_permission())
            continue
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


@pytest.fixture
def operator(django_user_model):
    """Log in a staff user with the given permissions: `operator(*perms, superuser=False)` → Client."""

    def login(*perms: str, superuser: bool = False, staff: bool = True, csrf: bool = False) -> Client:
        user = django_user_model.objects.create_user(
            f"operator-{uuid.uuid4().hex[:8]}", password="pw", is_staff=staff, is_superuser=superuser
        )
        user.user_permissions.set(permissions(*perms))
        client = Client(enforce_csrf_checks=csrf)
        client.force_login(user)
        return client

    return login


def assert_staff_write_applied(name: str, seeds: dict[str, Seed]) -> None:
    """What each staff write does to tenant-a (the body's scope: an operator may choose it)."""
    a = seeds[TENANT_A]
    session = Session.all_scopes.filter(pk=a.session_id).first()
    documents = dict(StoreDocument.all_scopes.filter(scope=TENANT_A, store="preferences").values_list("key", "data"))
    if name == "history-patch":
        assert session.title == "pwned" and session.tags == ["pwned"]
    elif name == "history-delete":
        assert session is None
    elif name in ("store-document-put", "store-document-post"):
        assert documents["solo-first"]["value"] == "pwned"
    elif name == "store-document-delete":
        assert "solo-first" not in documents
    elif name == "memory-add":
        assert MemoryEntry.all_scopes.filter(scope=TENANT_A, content="pwned fact").exists()
    elif name == "memory-delete":
        assert not MemoryEntry.all_scopes.filter(public_id=a.memory_id).exists()
    else:
        raise AssertionError(name)


def test_staff_without_permissions_is_403_forbidden_on_reads_and_writes(seeds, chat, operator):
    client = operator()
    before = everything()
    for name in READS + STAFF_WRITES:
        answer = send(chat, seeds, name, {}, client=client)
        assert answer.status == 403, (name, answer.status, answer.text)
        assert_error(answer.json(), "forbidden")
        assert_no_tenant_secret(answer.text)
    assert everything() == before


def test_staff_with_view_studio_reads_the_scope_it_names_but_cannot_write(seeds, chat, operator):
    client = operator("studio.view_studio")
    before = everything()
    for name in READS:
        answer = send(chat, seeds, name, {}, client=client)
        assert answer.status == 200, (name, answer.status, answer.text)
        assert_no_tenant_secret(answer.text, allowed=TENANT_A)
    history = send(chat, seeds, "history-list", {}, client=client).json()
    assert [item["id"] for item in history] == [seeds[TENANT_A].session_id]
    for name in STAFF_WRITES:
        answer = send(chat, seeds, name, {}, client=client)
        assert answer.status == 403, (name, answer.status, answer.text)
        assert_error(answer.json(), "forbidden")
    assert everything() == before


@pytest.mark.parametrize("name", STAFF_WRITES)
def test_staff_with_a_model_permission_may_do_that_write_and_no_other(seeds, chat, operator, name):
    client = operator("studio.view_studio", *WRITE_PERMISSIONS[name])
    others_before = {scope_id: rows_of(scope_id) for scope_id in (GLOBAL, TENANT_B)}
    answer = send(chat, seeds, name, {}, client=client)
    assert answer.status in (200, 201), (name, answer.status, answer.text)
    assert_staff_write_applied(name, seeds)
    for other in STAFF_WRITES:
        if set(WRITE_PERMISSIONS[other]) <= set(WRITE_PERMISSIONS[name]) or other == name:
            continue
        refused = send(chat, seeds, other, {}, client=client)
        assert refused.status == 403, (name, other, refused.status, refused.text)
    assert {scope_id: rows_of(scope_id) for scope_id in (GLOBAL, TENANT_B)} == others_before


def test_a_superuser_may_read_and_write_any_scope(seeds, chat, operator):
    client = operator(superuser=True)
    others_before = {scope_id: rows_of(scope_id) for scope_id in (GLOBAL, TENANT_B)}
    for name in READS:
        answer = send(chat, seeds, name, {}, client=client)
        assert answer.status == 200, (name, answer.text)
    for name in [
        "history-patch",
        "store-document-put",
        "memory-add",
        "memory-delete",
        "store-document-delete",
        "history-delete",
    ]:
        answer = send(chat, seeds, name, {}, client=client)
        assert answer.status in (200, 201), (name, answer.status, answer.text)
        assert_staff_write_applied(name, seeds)
    assert {scope_id: rows_of(scope_id) for scope_id in (GLOBAL, TENANT_B)} == others_before


def test_a_staff_session_write_needs_a_csrf_token(seeds, chat, operator):
    client = operator(superuser=True, csrf=True)
    before = everything()
    for name in STAFF_WRITES:
        answer = send(chat, seeds, name, {}, client=client)
        assert answer.status == 403, (name, answer.status, answer.text)
    assert everything() == before
    assert send(chat, seeds, "memory-list", {}, client=client).status == 200  # reads need no token


def test_a_logged_in_user_who_is_not_staff_is_not_an_operator(seeds, chat, operator):
    client = operator("studio.view_studio", "memory.add_memoryentry", staff=False)
    before = everything()
    for name in READS + STAFF_WRITES:
        answer = send(chat, seeds, name, {}, client=client)
        assert answer.status == 401, (name, answer.status, answer.text)
        assert_error(answer.json(), "authentication_required")
    assert everything() == before


def test_a_staff_session_does_not_open_the_chat_endpoints(seeds, chat, operator):
    """Chat and cancel take bearer credentials only: an operator's cookie is not a caller there."""
    from django.test import AsyncClient

    client = operator(superuser=True)
    async_client = AsyncClient()
    async_client.cookies = client.cookies
    before = everything()

    async def post(path, body):
        return await async_client.post(path, json.dumps(body), content_type="application/json")

    for path, body in [
        ("/chat/stream", {"message": "/say hi", "scope_id": TENANT_A}),
        ("/chat/sync", {"message": "/say hi", "scope_id": TENANT_A}),
        (f"/sessions/{seeds[TENANT_A].session_id}/cancel", {"scope_id": TENANT_A}),
    ]:
        response = asyncio.run(post(path, body))
        assert response.status_code == 401, (path, response.status_code)
    assert everything() == before


# =========================================================================================================
# 8. API keys: a key restricted to a scope cannot name another
# =========================================================================================================


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_restricted_api_key_cannot_name_another_scope(seeds, chat, name):
    headers = bearer(create_api_key(name="restricted", scope_id=TENANT_B).raw_key)
    before = everything()
    answer = send(chat, seeds, name, headers)
    assert answer.status == 403, (name, answer.status, answer.text)
    assert_error(answer.json(), "scope_forbidden")
    assert_no_tenant_secret(answer.text)
    after = everything()
    assert after["rows"] == before["rows"]


@pytest.mark.parametrize("name", ["history-list", "memory-list", "store-documents", "chat-sync-new"])
def test_a_restricted_api_key_acts_in_its_own_scope(seeds, chat, name):
    headers = bearer(create_api_key(name="restricted", scope_id=TENANT_B).raw_key)
    answer = send(chat, seeds, name, headers, target=TENANT_B)
    assert answer.status == 200, answer.text
    assert_no_tenant_secret(answer.text, allowed=TENANT_B)
    if name != "chat-sync-new":
        assert secret(TENANT_B) in answer.text or seeds[TENANT_B].session_id in answer.text


def test_a_restricted_api_key_cannot_name_another_scope_over_the_websocket(seeds):
    raw_key = create_api_key(name="restricted", scope_id=TENANT_B).raw_key
    before = everything()
    _, [reply] = ws_messages(raw_key, "query", [{"message": "/say hi", "scope_id": TENANT_A}])
    assert [item["type"] for item in reply] == ["error"]
    assert reply[0]["code"] == "scope_forbidden"
    assert everything()["rows"] == before["rows"]


def test_an_unrestricted_api_key_reads_the_scope_the_body_names(seeds, chat, tool_sees):
    """The contrast: a trusted server does choose the scope and context in the body."""
    headers = bearer(create_api_key(name="server").raw_key)
    stream = call(
        chat,
        "post",
        "/chat/stream",
        headers,
        body={"message": "/tool t_context {}", "scope_id": TENANT_A, "context": BODY_CONTEXT},
    )
    assert stream.events[0]["scope_id"] == TENANT_A
    assert tool_sees == [(TENANT_A, BODY_CONTEXT)]
    history = call(chat, "get", "/sessions/history", headers, query={"scope_id": TENANT_A})
    assert seeds[TENANT_A].session_id in {item["id"] for item in history.json()}
