"""The demo finance app API: auth, each endpoint, household isolation and validation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from examples.finance_app import data

GARCIA = {"Authorization": f"Bearer {data.GARCIA.token}", "X-Household-Id": data.GARCIA.id}
OKAFOR = {"Authorization": f"Bearer {data.OKAFOR.token}", "X-Household-Id": data.OKAFOR.id}


def url(name: str, **kwargs: str) -> str:
    return reverse(f"finance_app:{name}", kwargs=kwargs or None)


def get(client: Client, name: str, headers: dict[str, str] = GARCIA, **params: Any) -> Any:
    return client.get(url(name), params, headers=headers)


def post_transfer(client: Client, body: Any, headers: dict[str, str] = GARCIA) -> Any:
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post(url("transfers"), raw, content_type="application/json", headers=headers)


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


# --- authentication ---------------------------------------------------------------------------------


ENDPOINTS = ["household-me", "accounts", "transactions", "spending-summary"]


@pytest.mark.parametrize("name", ENDPOINTS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Household-Id": data.GARCIA.id},
        {"Authorization": "Bearer not-a-real-token", "X-Household-Id": data.GARCIA.id},
        {"Authorization": data.GARCIA.token, "X-Household-Id": data.GARCIA.id},  # no "Bearer"
        {"Authorization": f"Basic {data.GARCIA.token}", "X-Household-Id": data.GARCIA.id},
    ],
)
def test_missing_or_unknown_token_is_401(client: Client, name: str, headers: dict[str, str]) -> None:
    response = get(client, name, headers=headers)
    assert error_of(response, 401)["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_transfer_without_token_is_401(client: Client) -> None:
    response = post_transfer(client, {}, headers={"X-Household-Id": data.GARCIA.id})
    assert error_of(response, 401)["code"] == "unauthorized"


@pytest.mark.parametrize("name", ENDPOINTS)
def test_missing_household_header_is_400(client: Client, name: str) -> None:
    response = get(client, name, headers={"Authorization": GARCIA["Authorization"]})
    assert error_of(response, 400)["code"] == "missing_household"


@pytest.mark.parametrize("household_id", [data.OKAFOR.id, "household-nobody"])
def test_token_of_another_household_is_403(client: Client, household_id: str) -> None:
    headers = {"Authorization": GARCIA["Authorization"], "X-Household-Id": household_id}
    assert error_of(get(client, "accounts", headers=headers), 403)["code"] == "household_mismatch"
    body = {"from_account_id": "acc-o-checking", "to_account_id": "acc-o-savings", "amount": "1"}
    assert error_of(post_transfer(client, body, headers=headers), 403)["code"] == "household_mismatch"


def test_bearer_scheme_is_case_insensitive(client: Client) -> None:
    headers = {"Authorization": f"bearer {data.GARCIA.token}", "X-Household-Id": data.GARCIA.id}
    assert get(client, "household-me", headers=headers).status_code == 200


# --- endpoints ----------------------------------------------------------------------------------------


def test_household_me(client: Client) -> None:
    assert get(client, "household-me").json() == {"household": {"id": data.GARCIA.id, "name": "Garcia household"}}
    assert get(client, "household-me", OKAFOR).json()["household"]["name"] == "Okafor household"


def test_accounts(client: Client) -> None:
    accounts = get(client, "accounts").json()["accounts"]
    assert [a["id"] for a in accounts] == ["acc-g-checking", "acc-g-savings", "acc-g-credit"]
    assert accounts[0] == {
        "id": "acc-g-checking",
        "name": "Joint Checking",
        "type": "checking",
        "balance": "4218.55",
        "currency": "USD",
    }


def test_account_detail(client: Client) -> None:
    response = client.get(url("account-detail", account_id="acc-g-savings"), headers=GARCIA)
    assert response.status_code == 200
    assert response.json()["account"]["balance"] == "12500.00"


def test_unknown_account_is_404(client: Client) -> None:
    response = client.get(url("account-detail", account_id="acc-nope"), headers=GARCIA)
    assert error_of(response, 404)["code"] == "account_not_found"


def test_transactions_default_newest_first(client: Client) -> None:
    body = get(client, "transactions").json()
    assert body["count"] == 20 == len(body["transactions"])
    assert body["has_more"] is True
    dates = [t["date"] for t in body["transactions"]]
    assert dates == sorted(dates, reverse=True)
    first = body["transactions"][0]
    assert first == {
        "id": "txn-g-022",
        "date": "2026-11-17",
        "merchant": "Trader Joe's",
        "amount": "-93.18",
        "currency": "USD",
        "category": "groceries",
        "account_id": "acc-g-credit",
    }


def test_transactions_filters(client: Client) -> None:
    body = get(client, "transactions", limit="100", category="groceries").json()
    assert body["count"] == 4 and body["has_more"] is False
    assert {t["merchant"] for t in body["transactions"]} == {"Whole Foods Market", "Trader Joe's"}

    body = get(client, "transactions", account_id="acc-g-savings").json()
    assert [t["id"] for t in body["transactions"]] == ["txn-g-008"]

    body = get(client, "transactions", since="2026-11-13").json()
    assert [t["date"] for t in body["transactions"]] == ["2026-11-17", "2026-11-15", "2026-11-13"]

    body = get(client, "transactions", limit="2").json()
    assert body["count"] == 2 and body["has_more"] is True


def test_transactions_span_the_last_60_days(client: Client) -> None:
    for household in data.HOUSEHOLDS:
        assert 15 <= len(household.transactions) <= 25
        for txn in household.transactions:
            assert 0 <= (data.DEMO_TODAY - txn.date).days <= 60
            assert txn.category in data.CATEGORIES
            assert household.account(txn.account_id) is not None


def test_spending_summary(client: Client) -> None:
    body = get(client, "spending-summary", since="2026-11-01").json()
    assert body["since"] == "2026-11-01" and body["currency"] == "USD"
    by_category = {row["category"]: row for row in body["categories"]}
    assert by_category["rent"] == {"category": "rent", "total": "2150.00", "count": 1}
    assert by_category["groceries"] == {"category": "groceries", "total": "251.20", "count": 2}
    assert "salary" not in by_category and "transfer" not in by_category  # spend only
    assert body["categories"][0]["category"] == "rent"  # largest first
    assert body["total"] == "2605.77"


def test_spending_summary_without_since_covers_everything(client: Client) -> None:
    body = get(client, "spending-summary").json()
    assert body["since"] is None
    assert {row["category"]: row["total"] for row in body["categories"]}["rent"] == "4300.00"


def test_transfer_is_scheduled_with_deterministic_id(client: Client) -> None:
    body = {
        "from_account_id": "acc-g-checking",
        "to_account_id": "acc-g-savings",
        "amount": 250.5,
        "memo": "trip",
    }
    first = post_transfer(client, body)
    assert first.status_code == 201, first.content
    transfer = first.json()["transfer"]
    assert transfer["id"].startswith("tr-") and len(transfer["id"]) == 15
    assert transfer["status"] == "scheduled"
    assert transfer["amount"] == "250.50" and transfer["currency"] == "USD" and transfer["memo"] == "trip"
    assert post_transfer(client, body).json()["transfer"]["id"] == transfer["id"]
    other = post_transfer(client, {**body, "amount": "250.51"}).json()["transfer"]["id"]
    assert other != transfer["id"]


def test_transfer_of_whole_balance_and_to_credit_card(client: Client) -> None:
    body = {"from_account_id": "acc-g-checking", "to_account_id": "acc-g-credit", "amount": "4218.55"}
    assert post_transfer(client, body).status_code == 201


# --- isolation ----------------------------------------------------------------------------------------


def test_garcia_never_sees_okafor_data(client: Client) -> None:
    okafor_accounts = {a.id for a in data.OKAFOR.accounts}
    okafor_merchants = {t.merchant for t in data.OKAFOR.transactions}
    assert not okafor_merchants & {t.merchant for t in data.GARCIA.transactions}

    accounts = get(client, "accounts").json()["accounts"]
    assert not {a["id"] for a in accounts} & okafor_accounts
    transactions = get(client, "transactions", limit="100").json()["transactions"]
    assert len(transactions) == len(data.GARCIA.transactions)
    assert not {t["account_id"] for t in transactions} & okafor_accounts
    assert not {t["merchant"] for t in transactions} & okafor_merchants

    okafor_view = get(client, "transactions", OKAFOR, limit="100").json()["transactions"]
    assert {t["account_id"] for t in okafor_view} <= okafor_accounts


def test_other_household_account_is_404(client: Client) -> None:
    response = client.get(url("account-detail", account_id="acc-o-checking"), headers=GARCIA)
    error = error_of(response, 404)
    assert error["code"] == "account_not_found"
    assert "2940" not in response.content.decode()
    assert error_of(get(client, "transactions", account_id="acc-o-checking"), 404)["code"] == "account_not_found"


# --- query parameter validation -----------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["abc", "0", "-1", "101", "2.5"])
def test_bad_limit_is_400(client: Client, limit: str) -> None:
    error = error_of(get(client, "transactions", limit=limit), 400)
    assert error["code"] == "validation_error" and error["field"] == "limit"
    assert "limit" in error["message"]


def test_limit_100_is_allowed(client: Client) -> None:
    assert get(client, "transactions", limit="100").status_code == 200


@pytest.mark.parametrize("name", ["transactions", "spending-summary"])
@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "2026-02-30", "20261101", "2026-11-1"])
def test_bad_since_is_400(client: Client, name: str, since: str) -> None:
    error = error_of(get(client, name, since=since), 400)
    assert error["code"] == "validation_error" and error["field"] == "since"


def test_unknown_category_is_400(client: Client) -> None:
    error = error_of(get(client, "transactions", category="yachts"), 400)
    assert error["code"] == "validation_error" and error["field"] == "category"


# --- transfer validation ------------------------------------------------------------------------------

VALID = {"from_account_id": "acc-g-checking", "to_account_id": "acc-g-savings", "amount": "10.00"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"from_account_id": "acc-g-nope"}, "from_account_id"),
        ({"to_account_id": "acc-g-nope"}, "to_account_id"),
        ({"from_account_id": "acc-o-checking"}, "from_account_id"),  # Okafor's account
        ({"to_account_id": "acc-o-savings"}, "to_account_id"),  # Okafor's account
        ({"from_account_id": None}, "from_account_id"),
        ({"to_account_id": 42}, "to_account_id"),
        ({"to_account_id": "acc-g-checking"}, "to_account_id"),  # same account
        ({"amount": "-5"}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": None}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": True}, "amount"),
        ({"amount": [10]}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"memo": 7}, "memo"),
        ({"memo": False}, "memo"),
        ({"memo": "x" * 141}, "memo"),
    ],
)
def test_invalid_transfer_field_is_400(client: Client, change: dict[str, Any], field: str) -> None:
    error = error_of(post_transfer(client, {**VALID, **change}), 400)
    assert error["code"] == "validation_error"
    assert error["field"] == field and field in error["message"]


def test_missing_amount_is_400(client: Client) -> None:
    body = {k: v for k, v in VALID.items() if k != "amount"}
    assert error_of(post_transfer(client, body), 400)["field"] == "amount"


@pytest.mark.parametrize(
    ("source", "amount"), [("acc-g-checking", "4218.56"), ("acc-g-credit", "1"), ("acc-g-checking", "1e30")]
)
def test_transfer_over_balance_is_400(client: Client, source: str, amount: str) -> None:
    body = {"from_account_id": source, "to_account_id": "acc-g-savings", "amount": amount}
    error = error_of(post_transfer(client, body), 400)
    assert error["code"] == "insufficient_funds" and error["field"] == "amount"


@pytest.mark.parametrize("raw", ["{not json", "", "[1, 2]", '"text"', "\xff"])
def test_bad_json_is_400(client: Client, raw: str) -> None:
    assert error_of(post_transfer(client, raw), 400)["code"] == "invalid_json"


# --- methods ------------------------------------------------------------------------------------------


def test_delete_account_is_405(client: Client) -> None:
    response = client.delete(url("account-detail", account_id="acc-g-checking"), headers=GARCIA)
    assert error_of(response, 405)["code"] == "not_allowed"
    assert response["Allow"] == "GET"


@pytest.mark.parametrize(
    ("method", "name"),
    [
        ("post", "accounts"),
        ("put", "household-me"),
        ("delete", "transactions"),
        ("get", "transfers"),
        ("patch", "spending-summary"),
        ("delete", "transfers"),
    ],
)
def test_wrong_method_is_405_json(client: Client, method: str, name: str) -> None:
    response = getattr(client, method)(url(name), headers=GARCIA)
    assert error_of(response, 405)["code"] == "not_allowed"


def test_post_needs_no_csrf_token() -> None:
    strict = Client(enforce_csrf_checks=True)
    assert post_transfer(strict, VALID).status_code == 201
