"""The tenant boundary as a property (hypothesis): whatever a signed token's claims hold (a scope or none,
null, "", a non-string; any scopeContext; junk claims that look like scopes; an audience and issuer or
not, with the server requiring them or not; expired or not), whatever the body or query names as
`scope_id` / `context`, and whichever entry point is called, the answer reveals and touches only rows of
the scope the claims name (absent/null/"" = the global scope), and a 2xx happens only when the claims
are valid. Three scopes are seeded through the API once per test; every example compares every scope's
rows (read with `all_scopes`) before and after its request, and greps its answer for the other scopes'
secrets and session ids.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from django.conf import settings as django_settings
from django.test import Client, override_settings
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from agents.models import Session
from memory.models import MemoryEntry
from stores.models import StoreDocument
from tests.scoping.test_tenant_boundary import (
    MEMORY,
    SCOPES,
    Seed,
    rows_of,
    secret,
    seed_scope,
)
from tests.stores.conftest import store_agent_folder

GLOBAL, TENANT_A, TENANT_B, TENANT_C = "", "tenant-a", "tenant-b", "tenant-c"  # tenant-c: valid, never seeded
AUDIENCE, ISSUER = "amodal-prop", "https://saas.example"
ABSENT = object()  # the claim (or body field) is left out

valid_scope_claims = st.sampled_from([ABSENT, None, GLOBAL, TENANT_A, TENANT_B, TENANT_C])
invalid_scope_claims = st.sampled_from(
    [5, 0, True, False, 1.5, [], [TENANT_A], {}, {"scope_id": TENANT_A}, "x" * 256, "tenant-a\n", "tenant\x00a"]
)
valid_contexts = st.one_of(
    st.sampled_from([ABSENT, None, {}]),
    st.dictionaries(
        st.sampled_from(["household_id", "role", "k"]), st.sampled_from([TENANT_A, TENANT_B, "admin", ""]), max_size=2
    ),
)
invalid_contexts = st.sampled_from(
    ["x", ["a"], 5, True, {"k": 5}, {"k": None}, {"k": {"scope_id": TENANT_A}}, {"k": ["v"]}]
)
junk_values = st.sampled_from([TENANT_A, TENANT_B, None, 5, [TENANT_A], {"scope_id": TENANT_A}, True])
junk_claims = st.dictionaries(
    st.sampled_from(
        [
            "scope",
            "scopeId",
            "scope_ids",
            "tenant",
            "tenant_id",
            "org",
            "household_id",
            "role",
            "context",
            "scope_context",
        ]
    ),
    junk_values,
    max_size=3,
)

config_strategy = st.fixed_dictionaries(
    {"audience": st.sampled_from(["", AUDIENCE]), "issuer": st.sampled_from(["", ISSUER])}
)


def any_claims(config: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    """Anything, valid or not."""
    return st.fixed_dictionaries(
        {
            "scope_id": st.one_of(valid_scope_claims, invalid_scope_claims),
            "scopeContext": st.one_of(valid_contexts, invalid_contexts),
            "sub": st.sampled_from([ABSENT, "user", "", 5, None]),
            "aud": st.sampled_from([ABSENT, AUDIENCE, "other-app", [AUDIENCE, "other-app"], ["other-app"]]),
            "iss": st.sampled_from([ABSENT, ISSUER, "https://evil.example"]),
            "expired": st.booleans(),
            "junk": junk_claims,
        }
    )


def good_claims(config: dict[str, str]) -> st.SearchStrategy[dict[str, Any]]:
    """Claims a server configured by `config` must accept (so that half the examples get past auth)."""
    return st.fixed_dictionaries(
        {
            "scope_id": valid_scope_claims,
            "scopeContext": valid_contexts,
            "sub": st.sampled_from([ABSENT, "user", ""]),
            "aud": st.sampled_from(
                [AUDIENCE, [AUDIENCE, "other-app"]] if config["audience"] else [ABSENT, AUDIENCE, "other-app"]
            ),  # unchecked when none is configured
            "iss": st.sampled_from([ISSUER] if config["issuer"] else [ABSENT, ISSUER, "https://other.example"]),
            "expired": st.just(False),
            "junk": junk_claims,
        }
    )


def defects(config: dict[str, str]) -> st.SearchStrategy[tuple[str, Any]]:
    """One way to spoil otherwise good claims: (claim, bad value)."""
    choices = [
        st.tuples(st.just("scope_id"), invalid_scope_claims),
        st.tuples(st.just("scopeContext"), invalid_contexts),
        st.tuples(st.just("sub"), st.sampled_from([5, None, ["user"]])),
        st.tuples(st.just("expired"), st.just(True)),
    ]
    if config["audience"]:
        choices.append(st.tuples(st.just("aud"), st.sampled_from([ABSENT, "other-app", ["other-app"], ""])))
    if config["issuer"]:
        choices.append(st.tuples(st.just("iss"), st.sampled_from([ABSENT, "https://evil.example", ISSUER + "/"])))
    return st.one_of(choices)


@st.composite
def configured_claims(draw) -> tuple[dict[str, str], dict[str, Any]]:
    """Good claims, good claims with exactly one defect, or anything: a third each."""
    config = draw(config_strategy)
    kind = draw(st.sampled_from(["good", "one-defect", "any"]))
    if kind == "any":
        return config, draw(any_claims(config))
    claims = draw(good_claims(config))
    if kind == "one-defect":
        name, value = draw(defects(config))
        claims = {**claims, name: value}
    return config, claims


body_strategy = st.fixed_dictionaries(
    {
        "scope_id": st.sampled_from([ABSENT, None, GLOBAL, TENANT_A, TENANT_B, TENANT_C, 5, [TENANT_A]]),
        "context": st.sampled_from(
            [ABSENT, None, {"household_id": TENANT_A}, {"household_id": TENANT_B}, "x", {"n": 1}]
        ),
    }
)
ENTRY_POINTS = [
    "history-list",
    "history-detail-global",
    "history-detail-tenant-a",
    "history-detail-tenant-b",
    "stores-index",
    "store-documents",
    "store-get",
    "memory-list",
    "chat-sync",
]


def claims_are_valid(claims: dict[str, Any], config: dict[str, str]) -> bool:
    """The model of SPEC §2: what a server must accept."""
    scope_id, context, sub = claims["scope_id"], claims["scopeContext"], claims["sub"]
    if not (
        scope_id is ABSENT
        or scope_id is None
        or (isinstance(scope_id, str) and len(scope_id) <= 255 and scope_id.isprintable())
    ):
        return False
    if not (
        context is ABSENT
        or context is None
        or (isinstance(context, dict) and all(isinstance(v, str) for v in context.values()))
    ):
        return False
    if not (sub is ABSENT or isinstance(sub, str)):
        return False
    if claims["expired"]:
        return False
    if config["audience"]:
        aud = claims["aud"]
        if not (aud == config["audience"] or (isinstance(aud, list) and config["audience"] in aud)):
            return False
    return not config["issuer"] or claims["iss"] == config["issuer"]


def claim_scope(claims: dict[str, Any]) -> str:
    scope_id = claims["scope_id"]
    return GLOBAL if scope_id is ABSENT or scope_id is None else scope_id


def token_for(claims: dict[str, Any]) -> str:
    now = int(time.time())
    payload: dict[str, Any] = {"iat": now - 120, "exp": now - 60 if claims["expired"] else now + 600, **claims["junk"]}
    for name in ("scope_id", "scopeContext", "sub", "aud", "iss"):
        if claims[name] is not ABSENT:
            payload[name] = claims[name]
    # Raw JWS: claims PyJWT's encoder would refuse are still signed and sent.
    return jwt.api_jws.encode(json.dumps(payload).encode(), django_settings.AMODAL_JWT_SECRET, algorithm="HS256")


@pytest.fixture
def seeded(tmp_path, use_agent, chat) -> dict[str, Seed]:
    use_agent(store_agent_folder(tmp_path / "agent", memory=MEMORY))
    return {scope_id: seed_scope(chat, scope_id) for scope_id in SCOPES}


def all_rows() -> dict[str, dict[str, list]]:
    return {scope_id: rows_of(scope_id) for scope_id in (*SCOPES, TENANT_C)}


def request(chat, entry: str, seeded: dict[str, Seed], token: str, body: dict[str, Any]) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"}
    fields = {name: value for name, value in body.items() if value is not ABSENT}
    if entry == "chat-sync":
        result = chat.sync({"message": "/say hello", **fields}, headers)
        return result.status, result.body.decode()
    # GET: the body's scope_id travels in the query (only strings can).
    query = {"scope_id": fields["scope_id"]} if isinstance(fields.get("scope_id"), str) else {}
    path = {
        "history-list": "/sessions/history",
        "history-detail-global": f"/sessions/history/{seeded[GLOBAL].session_id}",
        "history-detail-tenant-a": f"/sessions/history/{seeded[TENANT_A].session_id}",
        "history-detail-tenant-b": f"/sessions/history/{seeded[TENANT_B].session_id}",
        "stores-index": "/api/stores",
        "store-documents": "/api/stores/preferences",
        "store-get": "/api/stores/preferences/currency",
        "memory-list": "/api/memory",
    }[entry]
    response = Client().get(path, query, headers=headers)
    return response.status_code, response.content.decode()


def check_answer(entry: str, scope_id: str, status: int, text: str, seeded: dict[str, Seed]) -> None:
    """A valid caller's answer shows exactly its own scope's rows."""
    body = json.loads(text)
    if entry == "history-list":
        assert status == 200, text
        ids = [item["id"] for item in body]
        assert set(Session.all_scopes.filter(pk__in=ids).values_list("scope", flat=True)) <= {scope_id}
        assert len(ids) == min(50, Session.all_scopes.filter(scope=scope_id).count())  # 50: the default page
        if scope_id in seeded:
            assert seeded[scope_id].session_id in ids
    elif entry.startswith("history-detail-"):
        target = entry.removeprefix("history-detail-").replace("global", GLOBAL)
        if target == scope_id:
            assert status == 200 and body["id"] == seeded[target].session_id, text
        else:
            assert status == 404 and body["error"]["code"] == "session_not_found", text
    elif entry == "stores-index":
        assert status == 200, text
        counts = {item["name"]: item["document_count"] for item in body["stores"]}
        assert counts["preferences"] == StoreDocument.all_scopes.filter(scope=scope_id, store="preferences").count()
    elif entry == "store-documents":
        assert status == 200, text
        expected = sorted(
            StoreDocument.all_scopes.filter(scope=scope_id, store="preferences").values_list("key", flat=True)
        )
        assert sorted(d["key"] for d in body["documents"]) == expected
        assert all(d["data"]["value"] == secret(scope_id) for d in body["documents"])
    elif entry == "store-get":
        if scope_id in seeded:
            assert status == 200 and body["data"]["value"] == secret(scope_id), text
        else:
            assert status == 404 and body["error"]["code"] == "document_not_found", text
    elif entry == "memory-list":
        assert status == 200, text
        assert [e["id"] for e in body["entries"]] == [
            str(public_id)
            for public_id in MemoryEntry.all_scopes.filter(scope=scope_id)
            .order_by("created_at", "id")
            .values_list("public_id", flat=True)
        ]
    elif entry == "chat-sync":
        assert status == 200, text
        assert Session.all_scopes.get(pk=body["session_id"]).scope == scope_id
    else:
        raise AssertionError(entry)


@pytest.mark.usefixtures("async_db_cleanup")
@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(case=configured_claims(), body=body_strategy, entry=st.sampled_from(ENTRY_POINTS))
def test_an_answer_reveals_and_touches_only_the_claims_scope(seeded, chat, case, body, entry):
    config, claims = case
    valid = claims_are_valid(claims, config)
    scope_id = claim_scope(claims)
    event(f"{'valid' if valid else 'refused'} {entry}" + (f" as {scope_id or 'global'}" if valid else ""))
    before = all_rows()
    with override_settings(AMODAL_JWT_AUDIENCE=config["audience"], AMODAL_JWT_ISSUER=config["issuer"]):
        status, text = request(chat, entry, seeded, token_for(claims), body)
    after = all_rows()

    if not valid:
        assert status == 401, (status, text)
        assert json.loads(text)["error"]["code"] == "invalid_token"
        assert after == before
        return
    assert status < 500, text
    check_answer(entry, scope_id, status, text, seeded)
    # Touched: only the claims' scope may change (a chat adds a session there), every other is as it was.
    for other in after:
        if other != scope_id:
            assert after[other] == before[other], f"{entry} as {scope_id!r} changed {other!r}"
    if entry != "chat-sync":
        assert after[scope_id] == before[scope_id]
    # Revealed: nothing seeded for another scope, no other scope's session id.
    for other in SCOPES:
        if other != scope_id:
            assert secret(other) not in text, f"{entry} as {scope_id!r} revealed {secret(other)}"
    foreign_ids = Session.all_scopes.exclude(scope=scope_id).values_list("pk", flat=True)
    assert not [str(pk) for pk in foreign_ids if str(pk) in text]
