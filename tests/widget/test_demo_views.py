"""The widget demo page and its token endpoint: development only, two demo households only."""

from __future__ import annotations

import json
import re
import time

import jwt
import pytest

from scoping.authentication import caller_from_jwt

HOUSEHOLDS = ("household-garcia", "household-okafor")


@pytest.fixture(autouse=True)
def development(settings):
    """The demo exists with DEBUG on (pytest-django turns DEBUG off for tests)."""
    settings.DEBUG = True


def claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def page_households(response) -> list[dict]:
    match = re.search(
        r'<script id="demo-households" type="application/json">(.*?)</script>', response.content.decode(), re.S
    )
    assert match, "the page carries the households as JSON"
    return json.loads(match.group(1))


def test_demo_page_mints_a_token_per_household(client):
    response = client.get("/widget/demo/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "/widget/amodal/chat-widget.js" in response.content.decode()
    households = page_households(response)
    assert [item["scope_id"] for item in households] == list(HOUSEHOLDS)
    for item in households:
        caller = caller_from_jwt(item["token"])  # signed with the server's key, verifies
        assert caller.claims_scope_id == item["scope_id"]
        assert caller.claims_context == {"household_id": item["scope_id"]} == item["context"]
        assert 0 < claims(item["token"])["exp"] - time.time() <= 300


def test_demo_page_can_hand_out_already_expired_tokens(client):
    households = page_households(client.get("/widget/demo/?token_ttl=-60"))
    assert all(claims(item["token"])["exp"] < time.time() for item in households)
    households = page_households(client.get("/widget/demo/?token_ttl=99999"))  # clamped to an hour
    assert all(claims(item["token"])["exp"] - time.time() <= 3600 for item in households)


@pytest.mark.parametrize("household", HOUSEHOLDS)
def test_token_endpoint_mints_a_fresh_short_lived_token(client, household):
    response = client.get(f"/widget/demo/token?household={household}")
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    body = response.json()
    assert body["scope_id"] == household and body["context"] == {"household_id": household}
    assert caller_from_jwt(body["token"]).claims_scope_id == household
    assert body["expires_in"] == 300


@pytest.mark.parametrize("household", ["", "household-smith", "household-garcia ", "*"])
def test_token_endpoint_mints_for_the_demo_households_only(client, household):
    response = client.get("/widget/demo/token", {"household": household})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("demo_api", [False, True])
def test_demo_is_absent_outside_development(client, settings, demo_api):
    # Anonymous token minting in production would hand out tenants' tokens: DEBUG only, even when the
    # demo finance API is switched on.
    settings.DEBUG = False
    settings.AMODAL_DEMO_API = demo_api
    assert client.get("/widget/demo/").status_code == 404
    assert client.get("/widget/demo/token?household=household-garcia").status_code == 404
    # The widget's files are the product, not the demo: still served.
    assert client.get("/widget/amodal/chat-widget.js").status_code == 200


def test_demo_endpoints_are_get_only(client):
    assert client.post("/widget/demo/token?household=household-garcia").status_code == 405
