"""The tenant boundary, black-box, against a real daphne process (SPEC §2 "Resolution (fail closed)").

tenant-a's user makes a session, a memory entry and a store document over HTTP. An attacker then holds a
real, validly signed token whose claims name no scope (no `scope_id` claim, `null` or `""`) and names
tenant-a in the body or query: over real HTTP (SSE, JSON) and a real WebSocket, the server acts in the
global scope and neither shows nor touches tenant-a's rows (checked with plain SQL on the server's
database). A second server requires an audience and issuer; a token for another audience gets 401.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from tests.conftest import write_agent_folder
from tests.e2e.helpers import check_stream, events_of, iter_frames, text_of
from tests.e2e.live import LiveServer, jwt_secret

pytestmark = pytest.mark.live

TENANT_A = "tenant-a"
SECRET_A = "secret-of-tenant-a"
UNKNOWN_SESSION = "00000000-0000-4000-8000-000000000000"
BODY_CONTEXT = {"household_id": TENANT_A, "role": "admin"}
AUDIENCE, ISSUER = "amodal-live", "https://saas.example"
PREFERENCES = {
    "name": "preferences",
    "entity": {
        "name": "Preference",
        "key": "{key}",
        "schema": {"key": {"type": "string"}, "value": {"type": "string"}},
    },
}


def sign(claims: dict[str, Any]) -> str:
    """A JWT signed with the servers' secret (PyJWT directly), with exactly these claims plus iat/exp."""
    now = int(time.time())
    return jwt.encode(
        {"iat": now, "exp": now + 600, "jti": secrets.token_hex(8), **claims}, jwt_secret(), algorithm="HS256"
    )


UNSCOPED = {
    "no-scope-claim": {"sub": "attacker"},
    "scope-null": {"sub": "attacker", "scope_id": None},
    "scope-empty": {"sub": "attacker", "scope_id": ""},
}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def unscoped_headers(variant: str) -> dict[str, str]:
    return bearer(sign(UNSCOPED[variant]))


def assert_json_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body


def stream(server: LiveServer, headers: dict[str, str], body: dict[str, Any]) -> tuple[httpx.Response, list[dict]]:
    with server.client() as client, client.stream("POST", "/chat/stream", json=body, headers=headers) as response:
        if response.status_code != 200:
            response.read()
            return response, []
        return response, events_of(list(iter_frames(response)))


def ws_receive(websocket) -> dict:
    return json.loads(websocket.recv(timeout=15))


def ws_until_done_or_error(websocket) -> list[dict]:
    events: list[dict] = []
    while True:
        item = ws_receive(websocket)
        if item["type"] == "auth_ok":
            continue
        events.append(item)
        if item["type"] == "done" or (item["type"] == "error" and len(events) == 1):
            return events


# --- The servers and tenant-a's data --------------------------------------------------------------------


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory) -> Path:
    """An agent with a scoped store and memory, no requireScope: a token without a scope is served in the
    global scope (where the attack would read the body's tenant if resolution fell back to it)."""
    return write_agent_folder(
        tmp_path_factory.mktemp("boundary-agent") / "agent",
        amodal={
            "memory": {"enabled": True, "maxEntries": 20, "maxTotalChars": 2000},
        },
        files={"stores/preferences.json": PREFERENCES},
    )


@pytest.fixture(scope="module")
def server(live_server_factory, agent_dir) -> LiveServer:
    return live_server_factory(extra_env={"AMODAL_AGENT_DIR": str(agent_dir)})


@pytest.fixture(scope="module")
def tenant_a(server) -> dict[str, Any]:
    """tenant-a's rows, made by tenant-a's own user over HTTP."""
    headers = bearer(sign({"sub": "user-a", "scope_id": TENANT_A, "scopeContext": {"household_id": TENANT_A}}))
    response, events = stream(server, headers, {"message": f"/say hello {SECRET_A}"})
    assert response.status_code == 200 and events[0]["scope_id"] == TENANT_A
    with server.client() as client:
        memory = client.post("/api/memory", json={"content": f"fact {SECRET_A}"}, headers=headers)
        assert memory.status_code == 201, memory.text
        document = client.put(
            "/api/stores/preferences/solo-first",
            json={"data": {"key": "solo-first", "value": SECRET_A}},
            headers=headers,
        )
        assert document.status_code == 201, document.text
    return {"session_id": events[0]["session_id"], "memory_id": memory.json()["id"], "headers": headers}


def tenant_rows(server: LiveServer) -> dict[str, list]:
    """Every row of tenant-a on the server's database (plain SQL)."""
    query = server.database.query
    return {
        "sessions": sorted(
            map(
                repr,
                query(
                    "SELECT id, title, status, message_count, updated_at FROM agents_session WHERE scope = %s",
                    (TENANT_A,),
                ),
            )
        ),
        "messages": sorted(
            map(repr, query("SELECT session_id, seq, role, text FROM agents_message WHERE scope = %s", (TENANT_A,)))
        ),
        "memory": sorted(map(repr, query("SELECT id, content FROM agents_memoryentry WHERE scope = %s", (TENANT_A,)))),
        "documents": sorted(
            map(repr, query("SELECT store, key, version, data FROM stores_storedocument WHERE scope = %s", (TENANT_A,)))
        ),
    }


def session_scope(server: LiveServer, session_id: str) -> str:
    [(scope_id,)] = server.database.query(
        "SELECT scope FROM agents_session WHERE id = %s", (server.database.uuid_param(session_id),)
    )
    return scope_id


# --- The attack over real HTTP ----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(UNSCOPED))
def test_live_unscoped_token_chat_stream_acts_in_the_global_scope(server, tenant_a, variant):
    before = tenant_rows(server)
    response, events = stream(
        server,
        unscoped_headers(variant),
        {"message": "/say in which scope", "scope_id": TENANT_A, "context": BODY_CONTEXT},
    )

    assert response.status_code == 200
    check_stream(events)
    assert events[0]["scope_id"] == ""
    assert text_of(events) == "in which scope"
    assert session_scope(server, events[0]["session_id"]) == ""
    assert tenant_rows(server) == before
    assert SECRET_A not in json.dumps(events) and TENANT_A not in json.dumps(events)


@pytest.mark.parametrize("variant", list(UNSCOPED))
def test_live_unscoped_token_cannot_continue_a_tenant_session(server, tenant_a, variant):
    before = tenant_rows(server)
    body = {"message": "/say hi", "scope_id": TENANT_A, "context": BODY_CONTEXT}
    tenant, _ = stream(server, unscoped_headers(variant), {**body, "session_id": tenant_a["session_id"]})
    unknown, _ = stream(server, unscoped_headers(variant), {**body, "session_id": UNKNOWN_SESSION})

    assert assert_json_error(tenant, 404, "session_not_found") == unknown.json()
    assert tenant_rows(server) == before


@pytest.mark.parametrize("variant", list(UNSCOPED))
def test_live_unscoped_token_gets_404_for_a_tenant_session_in_history(server, tenant_a, variant):
    headers = unscoped_headers(variant)
    before = tenant_rows(server)
    with server.client() as client:
        bodies: dict[str, list[dict]] = {}
        for session_id in (tenant_a["session_id"], UNKNOWN_SESSION):
            path = f"/sessions/history/{session_id}"
            answers = [
                client.get(path, params={"scope_id": TENANT_A}, headers=headers),
                client.patch(path, json={"scope_id": TENANT_A, "title": "pwned", "tags": ["pwned"]}, headers=headers),
                client.delete(path, params={"scope_id": TENANT_A}, headers=headers),
                client.post(f"/sessions/{session_id}/cancel", json={"scope_id": TENANT_A}, headers=headers),
            ]
            bodies[session_id] = [assert_json_error(answer, 404, "session_not_found") for answer in answers]
        # A tenant's session is exactly as missing as one that never existed.
        assert bodies[tenant_a["session_id"]] == bodies[UNKNOWN_SESSION]
        listing = client.get("/sessions/history", params={"scope_id": TENANT_A}, headers=headers)
    assert listing.status_code == 200
    assert tenant_a["session_id"] not in listing.text and SECRET_A not in listing.text
    assert all(item["scope_id"] == "" for item in listing.json())
    assert tenant_rows(server) == before


@pytest.mark.parametrize("variant", list(UNSCOPED))
def test_live_unscoped_token_sees_and_touches_no_tenant_memory(server, tenant_a, variant):
    headers = unscoped_headers(variant)
    before = tenant_rows(server)
    with server.client() as client:
        listed = client.get("/api/memory", params={"scope_id": TENANT_A}, headers=headers)
        searched = client.get("/api/memory", params={"scope_id": TENANT_A, "query": SECRET_A}, headers=headers)
        removed = client.delete(f"/api/memory/{tenant_a['memory_id']}", params={"scope_id": TENANT_A}, headers=headers)
        added = client.post(
            "/api/memory", json={"scope_id": TENANT_A, "content": f"attacker {variant}"}, headers=headers
        )
    assert listed.status_code == 200 and searched.status_code == 200
    assert tenant_a["memory_id"] not in [entry["id"] for entry in listed.json()["entries"]]
    assert SECRET_A not in listed.text and SECRET_A not in searched.text
    assert_json_error(removed, 404, "memory_entry_not_found")
    assert added.status_code == 201
    added_id = server.database.uuid_param(added.json()["id"])
    assert server.database.query("SELECT scope FROM agents_memoryentry WHERE public_id = %s", (added_id,)) == [("",)]
    assert tenant_rows(server) == before


@pytest.mark.parametrize("variant", list(UNSCOPED))
def test_live_unscoped_token_sees_and_touches_no_tenant_document(server, tenant_a, variant):
    headers = unscoped_headers(variant)
    before = tenant_rows(server)
    with server.client() as client:
        stores = client.get("/api/stores", params={"scope_id": TENANT_A}, headers=headers)
        page = client.get("/api/stores/preferences", params={"scope_id": TENANT_A}, headers=headers)
        document = client.get("/api/stores/preferences/solo-first", params={"scope_id": TENANT_A}, headers=headers)
        deleted = client.delete("/api/stores/preferences/solo-first", params={"scope_id": TENANT_A}, headers=headers)
    assert stores.status_code == 200 and page.status_code == 200
    assert "solo-first" not in [d["key"] for d in page.json()["documents"]]
    assert SECRET_A not in stores.text and SECRET_A not in page.text
    assert_json_error(document, 404, "document_not_found")
    assert_json_error(deleted, 404, "document_not_found")
    assert tenant_rows(server) == before


@pytest.mark.parametrize("auth", ["query-parameter", "first-message"])
@pytest.mark.parametrize("variant", list(UNSCOPED))
def test_live_unscoped_token_websocket_acts_in_the_global_scope(server, tenant_a, variant, auth):
    token = sign(UNSCOPED[variant])
    before = tenant_rows(server)
    url = f"{server.ws_url}/ws/chat" + (f"?token={token}" if auth == "query-parameter" else "")
    with ws_connect(url, open_timeout=10, close_timeout=5, proxy=None) as websocket:
        if auth == "first-message":
            websocket.send(json.dumps({"type": "auth", "token": token}))
        websocket.send(
            json.dumps(
                {"type": "message", "message": "/say over the socket", "scope_id": TENANT_A, "context": BODY_CONTEXT}
            )
        )
        events = ws_until_done_or_error(websocket)
        websocket.send(
            json.dumps(
                {"type": "message", "message": "/say hi", "scope_id": TENANT_A, "session_id": tenant_a["session_id"]}
            )
        )
        tenant = ws_until_done_or_error(websocket)
        websocket.send(
            json.dumps({"type": "message", "message": "/say hi", "scope_id": TENANT_A, "session_id": UNKNOWN_SESSION})
        )
        unknown = ws_until_done_or_error(websocket)

    check_stream(events)
    assert events[0]["scope_id"] == ""
    assert session_scope(server, events[0]["session_id"]) == ""
    assert [item["type"] for item in tenant] == ["error"] and tenant[0]["code"] == "session_not_found"
    assert tenant[0]["message"] == unknown[0]["message"]
    assert SECRET_A not in json.dumps(events + tenant)
    assert tenant_rows(server) == before


# --- Audience and issuer on a server that requires them ------------------------------------------------------


@pytest.fixture(scope="module")
def audience_server(live_server_factory) -> LiveServer:
    """The bundled finance-agent (requireScope) on a server that requires our audience and issuer."""
    return live_server_factory(extra_env={"AMODAL_JWT_AUDIENCE": AUDIENCE, "AMODAL_JWT_ISSUER": ISSUER})


GARCIA = {"sub": "garcia", "scope_id": "household-garcia", "scopeContext": {"household_id": "household-garcia"}}
AUD_CASES = {
    "wrong-aud": ({**GARCIA, "aud": "another-app", "iss": ISSUER}, 401),
    "no-aud": ({**GARCIA, "iss": ISSUER}, 401),
    "wrong-iss": ({**GARCIA, "aud": AUDIENCE, "iss": "https://evil.example"}, 401),
    "no-iss": ({**GARCIA, "aud": AUDIENCE}, 401),
    "right": ({**GARCIA, "aud": AUDIENCE, "iss": ISSUER}, 200),
}


@pytest.mark.parametrize("case", list(AUD_CASES))
def test_live_server_with_an_audience_refuses_tokens_for_another(audience_server, case):
    claims, status = AUD_CASES[case]
    headers = bearer(sign(claims))
    sessions_before = audience_server.database.query("SELECT COUNT(*) FROM agents_session")[0][0]
    with audience_server.client() as client:
        history = client.get("/sessions/history", headers=headers)
        memory = client.get("/api/memory", headers=headers)
    response, events = stream(audience_server, headers, {"message": "/say hi"})
    for answer in (history, memory, response):
        if status == 401:
            assert_json_error(answer, 401, "invalid_token")
        else:
            assert answer.status_code == 200, answer.text
    if status == 401:
        assert audience_server.database.query("SELECT COUNT(*) FROM agents_session")[0][0] == sessions_before
    else:
        assert events[0]["scope_id"] == "household-garcia"


@pytest.mark.parametrize("case", ["wrong-aud", "right"])
def test_live_websocket_with_an_audience_refuses_tokens_for_another(audience_server, case):
    claims, status = AUD_CASES[case]
    token = sign(claims)
    with ws_connect(
        f"{audience_server.ws_url}/ws/chat?token={token}", open_timeout=10, close_timeout=5, proxy=None
    ) as websocket:
        first = ws_receive(websocket)
        if status == 200:
            assert first["type"] == "auth_ok"
            return
        assert first["type"] == "error" and first["code"] == "invalid_token"
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=15)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


@pytest.mark.parametrize("variant", list(UNSCOPED))
def test_live_require_scope_refuses_an_unscoped_token_that_names_a_scope_in_the_body(audience_server, variant):
    """Right audience and issuer, no scope claim, a household in the body: 400 scope_required, nothing saved."""
    headers = bearer(sign({**UNSCOPED[variant], "aud": AUDIENCE, "iss": ISSUER}))
    sessions_before = audience_server.database.query("SELECT COUNT(*) FROM agents_session")[0][0]
    body = {"message": "/say hi", "scope_id": "household-garcia", "context": {"household_id": "household-garcia"}}
    response, _ = stream(audience_server, headers, body)
    assert_json_error(response, 400, "scope_required")
    with audience_server.client() as client:
        assert_json_error(
            client.get("/sessions/history", params={"scope_id": "household-garcia"}, headers=headers),
            400,
            "scope_required",
        )
        assert_json_error(
            client.get("/api/memory", params={"scope_id": "household-garcia"}, headers=headers), 400, "scope_required"
        )
    assert audience_server.database.query("SELECT COUNT(*) FROM agents_session")[0][0] == sessions_before
