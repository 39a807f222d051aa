"""The README's run steps, as a new user types them: migrate and demo_setup on a fresh SQLite file,
mint_token and create_api_key, each in a subprocess; the printed tokens and keys work on a live server."""

from __future__ import annotations

import re
import time

import jwt
import pytest

from tests.e2e.live import base_env, create_sqlite_database, jwt_secret, run_manage, start_server

pytestmark = pytest.mark.live

HOUSEHOLDS = ("household-garcia", "household-okafor")
TOKEN_LINE = re.compile(r"Token for scope (?P<scope>\S+) \(24 h\):\n\s+(?P<token>\S+)")


def decode(token: str) -> dict:
    return jwt.decode(token, jwt_secret(), algorithms=["HS256"])


def test_migrate_and_demo_setup_print_a_login_and_a_token_per_household(tmp_path):
    database = create_sqlite_database(tmp_path)
    env = base_env(database.url)

    run_manage(["migrate", "--noinput"], env)
    first = run_manage(["demo_setup"], env).stdout
    again = run_manage(["demo_setup"], env).stdout

    assert "login: demo / amodal-demo" in first
    assert "/admin/" in first and "/health" in first
    assert "existing user; password unchanged" in again
    tokens = {match["scope"]: match["token"] for match in TOKEN_LINE.finditer(first)}
    assert sorted(tokens) == sorted(HOUSEHOLDS)
    now = time.time()
    for scope_id, token in tokens.items():
        claims = decode(token)
        assert claims["scope_id"] == scope_id
        assert claims["scopeContext"] == {"household_id": scope_id}
        assert claims["sub"]
        assert now + 23 * 3600 < claims["exp"] <= now + 24 * 3600 + 60
    [(is_staff, is_superuser)] = database.query(
        "SELECT is_staff, is_superuser FROM auth_user WHERE username = %s", ("demo",)
    )
    assert is_staff and is_superuser
    assert database.query("SELECT COUNT(*) FROM auth_user") == [(1,)]

    # The printed tokens work on a server started on that database, as `make run` serves it.
    server = start_server(database, tmp_path)
    try:
        with server.client() as client:
            for scope_id, token in tokens.items():
                response = client.post(
                    "/chat/sync", json={"message": "/say hi"}, headers={"Authorization": f"Bearer {token}"}
                )
                assert response.status_code == 200, response.text
                history = client.get("/sessions/history", headers={"Authorization": f"Bearer {token}"}).json()
                assert [item["scope_id"] for item in history] == [scope_id]
    finally:
        server.stop()


def test_mint_token_prints_a_jwt_the_server_accepts(daphne_server):
    completed = run_manage(
        [
            "mint_token",
            "--scope",
            "household-garcia",
            "--context",
            "household_id=household-garcia",
            "--context",
            "plan=pro",
            "--sub",
            "alice",
            "--ttl",
            "600",
        ],
        base_env(daphne_server.database.url),
    )

    token = completed.stdout.strip()
    claims = decode(token)
    assert claims["scope_id"] == "household-garcia"
    assert claims["scopeContext"] == {"household_id": "household-garcia", "plan": "pro"}
    assert claims["sub"] == "alice"
    assert 0 < claims["exp"] - time.time() <= 600 + 60
    with daphne_server.client() as client:
        response = client.post(
            "/chat/sync", json={"message": "/say minted"}, headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["response"] == "minted"


@pytest.mark.parametrize(
    "args",
    [
        ["--scope", "household-garcia", "--context", "no-equals-sign"],
        ["--scope", "household-garcia", "--ttl", "0"],
        ["--scope", "x" * 300],
    ],
)
def test_mint_token_refuses_bad_arguments(tmp_path, args):
    completed = run_manage(["mint_token", *args], base_env(f"sqlite:///{tmp_path / 'unused.sqlite3'}"), check=False)
    assert completed.returncode != 0
    assert completed.stdout.strip() == ""
    assert "Traceback" not in completed.stderr


def test_create_api_key_prints_a_key_once_that_the_server_accepts(daphne_server):
    env = base_env(daphne_server.database.url)
    restricted = run_manage(["create_api_key", "e2e billing backend", "--scope", "household-okafor"], env)
    unrestricted = run_manage(["create_api_key", "e2e any scope"], env)

    restricted_key, any_key = restricted.stdout.strip(), unrestricted.stdout.strip()
    assert restricted_key.startswith("ak_") and any_key.startswith("ak_")
    assert "not shown again" in restricted.stderr
    # Stored hashed: the raw key is in no column.
    for name, prefix, digest, scope_id in daphne_server.database.query(
        "SELECT name, prefix, key_digest, scope_id FROM scoping_apikey WHERE name LIKE %s", ("e2e %",)
    ):
        assert restricted_key not in (name, prefix, digest) and any_key not in (name, prefix, digest)
        assert scope_id == ("household-okafor" if name == "e2e billing backend" else None)

    with daphne_server.client() as client:
        own_scope = client.post(
            "/chat/sync", json={"message": "/say keyed"}, headers={"Authorization": f"Bearer {restricted_key}"}
        )
        other_scope = client.post(
            "/chat/sync",
            json={"message": "/say keyed", "scope_id": "household-garcia"},
            headers={"Authorization": f"Bearer {restricted_key}"},
        )
        chosen_scope = client.post(
            "/chat/sync",
            json={"message": "/say keyed", "scope_id": "household-e2e-key"},
            headers={"Authorization": f"Bearer {any_key}"},
        )
        listed = client.get(
            "/sessions/history",
            params={"scope_id": "household-e2e-key"},
            headers={"Authorization": f"Bearer {any_key}"},
        )

    assert own_scope.status_code == 200, own_scope.text
    assert other_scope.status_code == 403, other_scope.text
    assert other_scope.json()["error"]["code"] == "scope_forbidden"
    assert chosen_scope.status_code == 200, chosen_scope.text
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()] == [chosen_scope.json()["session_id"]]
    assert listed.json()[0]["scope_id"] == "household-e2e-key"
