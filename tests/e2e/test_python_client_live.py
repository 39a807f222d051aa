"""The Python client (clients/python) against a real daphne server (the `local` provider and the demo finance
API), sync and async: a streamed message with a tool call, a confirmation round trip, cancel, sync send,
history and feedback, memory, stores, credentials and scopes with an API key, and the error answers each
raised as its typed exception (404 for another scope's session, 401 for a bad token, 429 over a rate limit)."""

from __future__ import annotations

import asyncio
import json
import uuid

import amodal_client as ac
import pytest

from tests.clients.flavors import Flavor
from tests.e2e.live import base_env, run_manage

pytestmark = pytest.mark.live

GARCIA = "household-garcia"
OKAFOR = "household-okafor"


@pytest.fixture(params=["sync", "async"])
def flavor(request, daphne_server) -> Flavor:
    return Flavor(request.param, daphne_server.base_url)


def user_token(server, scope_id: str, **kwargs) -> str:
    return server.token(scope_id, {"household_id": scope_id}, **kwargs)


def api_key(server, name: str, *flags: str) -> str:
    completed = run_manage(["create_api_key", f"{name} {uuid.uuid4().hex[:6]}", *flags], base_env(server.database.url))
    return completed.stdout.strip()


def test_stream_a_message_with_a_tool_call(daphne_server, flavor):
    events = flavor.events("show my recent transactions", token=user_token(daphne_server, GARCIA))

    types = [event.type for event in events]
    assert types[0] == "init" and types[-1] == "done"
    assert not any(isinstance(event, ac.UnknownEvent) for event in events)
    init, done = events[0], events[-1]
    assert isinstance(init, ac.InitEvent) and init.scope_id == GARCIA
    start = next(event for event in events if isinstance(event, ac.ToolCallStartEvent))
    result = next(event for event in events if isinstance(event, ac.ToolCallResultEvent))
    assert start.tool_name == "request" and result.tool_id == start.tool_id and result.ok, result
    assert types.index("tool_call_start") < types.index("tool_call_result")
    assert types.count("usage") == 2
    assert "".join(e.content for e in events if isinstance(e, ac.TextDeltaEvent))
    assert isinstance(done, ac.DoneEvent) and done.reason == "model_stop" and done.message_id
    assert done.usage.total_tokens == sum(
        e.input_tokens + e.output_tokens for e in events if isinstance(e, ac.UsageEvent)
    )


def test_a_confirmation_round_trip(daphne_server, flavor):
    token = user_token(daphne_server, OKAFOR)
    transfer = {
        "connection": "app-api",
        "method": "POST",
        "endpoint": "/transfers",
        "intent": "write",
        "data": {"from_account_id": "acc-o-checking", "to_account_id": "acc-o-savings", "amount": "1.00"},
    }
    first = flavor.events(f"/tool request {json.dumps(transfer)}", token=token)
    confirmation = next(event for event in first if isinstance(event, ac.ConfirmationRequiredEvent))
    assert (confirmation.method, confirmation.endpoint, confirmation.connection) == ("POST", "/transfers", "app-api")
    assert confirmation.params["data"]["amount"] == "1.00"

    session_id = first[0].session_id
    second = flavor.events(confirmation.approve_message(), token=token, session_id=session_id)

    assert second[0].session_id == session_id
    call = next(event for event in second if isinstance(event, ac.ToolCallStartEvent))
    assert call.parameters["intent"] == "confirmed_write"
    result = next(event for event in second if isinstance(event, ac.ToolCallResultEvent))
    assert result.ok, result


def test_send_history_and_feedback(daphne_server, flavor):
    token = user_token(daphne_server, GARCIA)

    result = flavor.call(lambda client: client.chat.send("/say synced answer"), token=token)
    assert (result.response, result.stop_reason, result.tool_calls, result.errors) == (
        "synced answer",
        "model_stop",
        [],
        [],
    )
    assert result.usage.total_tokens > 0 and result.message_id

    flavor.call(
        lambda client: client.sessions.feedback(result.session_id, -1, message_id=result.message_id, comment="meh"),
        token=token,
    )
    detail = flavor.call(lambda client: client.sessions.get(result.session_id), token=token)
    assert [(m.role, m.text) for m in detail.messages] == [
        ("user", "/say synced answer"),
        ("assistant", "synced answer"),
    ]
    assert detail.messages[1].id == result.message_id
    assert [(f.message_id, f.rating, f.comment) for f in detail.feedback] == [(result.message_id, -1, "meh")]

    flavor.call(lambda client: client.sessions.update(result.session_id, title="Client test", tags=["py"]), token=token)
    page = flavor.call(lambda client: client.sessions.list(tags=["py"], limit=200), token=token)
    assert result.session_id in [s.id for s in page.sessions]
    mine = next(s for s in page.sessions if s.id == result.session_id)
    assert (mine.title, mine.tags, mine.scope_id, mine.message_count) == ("Client test", ["py"], GARCIA, 2)


def test_history_pages_follow_the_cursor(daphne_server, flavor):
    scope_id = f"household-pages-{uuid.uuid4().hex[:8]}"
    token = user_token(daphne_server, scope_id)
    for index in range(3):
        flavor.call(lambda client, index=index: client.chat.send(f"/say page {index}"), token=token)

    first = flavor.call(lambda client: client.sessions.list(limit=2), token=token)
    second = flavor.call(lambda client: client.sessions.list(limit=2, before=first.next_cursor), token=token)

    assert len(first.sessions) == 2 and first.next_cursor
    assert len(second.sessions) == 1 and second.next_cursor is None
    assert [s.title for s in first.sessions + second.sessions] == ["/say page 2", "/say page 1", "/say page 0"]


def test_cancel_stops_a_running_stream(daphne_server, flavor):
    token = user_token(daphne_server, GARCIA)
    words = " ".join(f"w{i}" for i in range(100))
    message = f"/slow 100 {words}"

    if flavor.name == "sync":
        with ac.AmodalClient(daphne_server.base_url, token) as client, client.chat.stream(message) as stream:
            events = []
            for event in stream:
                events.append(event)
                if isinstance(event, ac.TextDeltaEvent) and len(events) == 2:
                    assert stream.session_id is not None
                    assert client.chat.cancel(stream.session_id).running is True
            done = stream.done
    else:

        async def main():
            async with (
                ac.AsyncAmodalClient(daphne_server.base_url, token) as client,
                client.chat.stream(message) as stream,
            ):
                events = []
                async for event in stream:
                    events.append(event)
                    if isinstance(event, ac.TextDeltaEvent) and len(events) == 2:
                        assert stream.session_id is not None
                        assert (await client.chat.cancel(stream.session_id)).running is True
                return events, stream.done

        events, done = asyncio.run(main())

    assert done is events[-1] and done.reason == "user_abort"
    assert len([e for e in events if isinstance(e, ac.TextDeltaEvent)]) < 100


def test_memory_and_stores(daphne_server, flavor):
    scope_id = f"household-mem-{uuid.uuid4().hex[:8]}"
    token = user_token(daphne_server, scope_id)

    entry = flavor.call(lambda client: client.memory.add("Prefers answers in EUR"), token=token)
    assert entry.created is True
    listing = flavor.call(lambda client: client.memory.list(query="EUR"), token=token)
    assert [e.id for e in listing.entries] == [entry.id] and listing.enabled and listing.count == 1
    flavor.call(lambda client: client.memory.delete(entry.id), token=token)
    assert flavor.call(lambda client: client.memory.list(), token=token).entries == []

    stores = {store.name: store for store in flavor.call(lambda client: client.stores.list(), token=token)}
    assert stores["preferences"].shared is False and stores["categories"].shared is True
    written = flavor.call(
        lambda client: client.stores.put("preferences", "currency", {"key": "currency", "value": "EUR"}), token=token
    )
    assert (written.created, written.version, written.data) == (True, 1, {"key": "currency", "value": "EUR"})
    again = flavor.call(
        lambda client: client.stores.create("preferences", {"key": "currency", "value": "USD"}), token=token
    )
    assert (again.created, again.version) == (False, 2)
    page = flavor.call(lambda client: client.stores.query("preferences", filter={"value": "USD"}), token=token)
    assert [d.key for d in page.documents] == ["currency"] and page.has_more is False
    flavor.call(lambda client: client.stores.delete("preferences", "currency"), token=token)
    with pytest.raises(ac.NotFound) as raised:
        flavor.call(lambda client: client.stores.get("preferences", "currency"), token=token)
    assert raised.value.code == "document_not_found"
    with pytest.raises(ac.PermissionDenied) as refused:
        flavor.call(
            lambda client: client.stores.create("categories", {"slug": "x", "label": "X", "kind": "expense"}),
            token=token,
        )
    assert refused.value.code == "shared_store_read_only"


def test_credentials_and_scopes_with_an_api_key(daphne_server, flavor):
    key = api_key(daphne_server, "py client ops", "--manage-credentials", "--manage-scopes")
    scope_id = f"org/{uuid.uuid4().hex[:8]}"  # a `/` in the id: sent as %2F in scope URLs

    written = flavor.call(
        lambda client: client.credentials.set("APP_TOKEN", "s3cret-value"), token=key, scope_id=scope_id
    )
    assert (written.key, written.scope_id, written.result) == ("APP_TOKEN", scope_id, "created")
    page = flavor.call(lambda client: client.credentials.list(), token=key, scope_id=scope_id)
    assert [c.key for c in page.credentials] == ["APP_TOKEN"] and "s3cret" not in json.dumps(
        page.credentials[0].__dict__, default=str
    )

    details = flavor.call(
        lambda client: client.scopes.update(scope_id, label="Org", metadata={"plan": "pro"}), token=key
    )
    assert (details.scope_id, details.label, details.metadata) == (scope_id, "Org", {"plan": "pro"})
    assert flavor.call(lambda client: client.scopes.get(scope_id), token=key).label == "Org"
    kinds = [item["kind"] for item in flavor.export(scope_id, token=key)]
    assert "scope" in kinds and "credential" in kinds

    flavor.call(lambda client: client.credentials.delete("APP_TOKEN"), token=key, scope_id=scope_id)
    with pytest.raises(ac.NotFound) as raised:
        flavor.call(lambda client: client.credentials.delete("APP_TOKEN"), token=key, scope_id=scope_id)
    assert raised.value.code == "credential_not_found"

    erased = flavor.call(lambda client: client.scopes.erase(scope_id), token=key)
    assert erased.deleted
    with pytest.raises(ac.NotFound):
        flavor.call(lambda client: client.scopes.get(scope_id), token=key)


def test_a_key_without_the_permission_is_refused(daphne_server, flavor):
    key = api_key(daphne_server, "py client plain")

    with pytest.raises(ac.PermissionDenied) as raised:
        flavor.call(lambda client: client.credentials.list(), token=key, scope_id=GARCIA)

    assert (raised.value.status, raised.value.code) == (403, "forbidden")


def test_another_scopes_session_is_not_found(daphne_server, flavor):
    session_id = flavor.call(
        lambda client: client.chat.send("/say mine"), token=user_token(daphne_server, GARCIA)
    ).session_id
    other = user_token(daphne_server, OKAFOR)

    with pytest.raises(ac.NotFound) as detail:
        flavor.call(lambda client: client.sessions.get(session_id), token=other)
    with pytest.raises(ac.NotFound) as stream:
        flavor.events("/say intruding", token=other, session_id=session_id)

    for raised in (detail.value, stream.value):
        assert (raised.status, raised.code) == (404, "session_not_found")


def test_a_bad_token_is_an_authentication_error(daphne_server, flavor):
    bad = user_token(daphne_server, GARCIA, secret="not-the-servers-secret-0123456789abcdef")

    with pytest.raises(ac.AuthenticationError) as streamed:
        flavor.events("/say hi", token=bad)
    with pytest.raises(ac.AuthenticationError) as listed:
        flavor.call(lambda client: client.sessions.list(), token=bad)
    with pytest.raises(ac.AuthenticationError) as anonymous:
        flavor.call(lambda client: client.memory.list())

    assert (streamed.value.status, streamed.value.code) == (401, "invalid_token")
    assert (listed.value.status, listed.value.code) == (401, "invalid_token")
    assert anonymous.value.code == "authentication_required"


def test_bad_input_is_a_validation_error(daphne_server, flavor):
    token = user_token(daphne_server, GARCIA)

    with pytest.raises(ac.ValidationError) as empty:
        flavor.call(lambda client: client.chat.send(""), token=token)
    with pytest.raises(ac.ValidationError) as rating:
        flavor.call(lambda client: client.sessions.feedback(str(uuid.uuid4()), 5), token=token)

    assert empty.value.code == "validation_error" and "message" in empty.value.message
    assert rating.value.code == "validation_error" and "rating" in rating.value.message


@pytest.fixture(scope="module")
def limited_server(live_server_factory):
    return live_server_factory(extra_env={"AMODAL_RATE_LIMIT_SCOPE": "2/minute"})


@pytest.mark.parametrize("name", ["sync", "async"])
def test_over_the_rate_limit_is_rate_limited_with_retry_after(limited_server, name):
    flavor = Flavor(name, limited_server.base_url)
    token = user_token(limited_server, f"household-limit-{uuid.uuid4().hex[:8]}")

    flavor.call(lambda client: client.sessions.list(), token=token)
    flavor.call(lambda client: client.sessions.list(), token=token)
    with pytest.raises(ac.RateLimited) as raised:
        flavor.call(lambda client: client.sessions.list(), token=token)
    with pytest.raises(ac.RateLimited) as streamed:
        flavor.events("/say over", token=token)

    for error in (raised.value, streamed.value):
        assert (error.status, error.code) == (429, "rate_limited")
        assert error.retry_after is not None and 1 <= error.retry_after <= 60
