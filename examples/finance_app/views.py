"""The demo finance app API: the SaaS builder's own API that the bundled example agent calls.

Every request must carry ``Authorization: Bearer <token>`` (one token per household) and
``X-Household-Id: <household id>``; the two must agree. Errors are always
``{"error": {"code": ..., "message": ..., "field"?: ...}}``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import data
from .data import Account, Household

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_MEMO_LENGTH = 140
_BEARER = re.compile(r"Bearer\s+(\S+)\s*\Z", re.IGNORECASE)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")

HouseholdView = Callable[..., JsonResponse]


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JsonResponse:
    """The one JSON error shape of this API."""
    body = {"code": code, "message": message}
    if field:
        body["field"] = field
    return JsonResponse({"error": body}, status=status, headers=headers)


class ApiError(Exception):
    """Raised anywhere in a view; `household_endpoint` turns it into an error response."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers

    def response(self) -> JsonResponse:
        return error_response(self.status, self.code, self.message, field=self.field, headers=self.headers)


def invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "validation_error", f"{field}: {message}", field=field)


def authenticate(request: HttpRequest) -> Household:
    """The household of the bearer token, which must match the X-Household-Id header."""
    match = _BEARER.match(request.headers.get("Authorization", "").strip())
    household = data.household_for_token(match.group(1)) if match else None
    if household is None:
        raise ApiError(
            401,
            "unauthorized",
            "A valid 'Authorization: Bearer <token>' header is required.",
            headers={"WWW-Authenticate": 'Bearer realm="finance-api"'},
        )
    household_id = request.headers.get("X-Household-Id", "").strip()
    if not household_id:
        raise ApiError(400, "missing_household", "The X-Household-Id header is required.")
    if household_id != household.id:
        raise ApiError(403, "household_mismatch", "The token does not belong to the household in X-Household-Id.")
    return household


def household_endpoint(*methods: str) -> Callable[[HouseholdView], HouseholdView]:
    """Allow only `methods`, authenticate, and call ``view(request, household, **kwargs)``.

    The view is CSRF-exempt: callers are servers holding a bearer token, not browsers with cookies.
    """
    allowed = ", ".join(methods)

    def decorator(view: HouseholdView) -> HouseholdView:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
            if request.method not in methods:
                return error_response(
                    405,
                    "not_allowed",
                    f"{request.method} is not allowed on this endpoint (allowed: {allowed}).",
                    headers={"Allow": allowed},
                )
            try:
                return view(request, authenticate(request), *args, **kwargs)
            except ApiError as exc:
                return exc.response()

        return csrf_exempt(wrapper)

    return decorator


# --- parsing ------------------------------------------------------------------------------------------


def parse_limit(raw: str | None) -> int:
    if not raw:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise invalid("limit", f"must be an integer between 1 and {MAX_LIMIT}.")
    if not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}.")
    return limit


def parse_date(raw: str | None, field: str) -> date | None:
    if not raw:
        return None
    try:
        if not _ISO_DATE.match(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid(field, "must be a date in YYYY-MM-DD form.")


def parse_json_object(request: HttpRequest) -> dict[str, Any]:
    try:
        payload = json.loads(request.body, parse_float=Decimal)
    except ValueError:
        raise ApiError(400, "invalid_json", "The request body must be valid JSON.")
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return payload


def parse_amount(raw: Any) -> Decimal:
    if raw is None:
        raise invalid("amount", "is required.")
    if isinstance(raw, bool) or not isinstance(raw, int | str | Decimal):
        raise invalid("amount", "must be a number or a decimal string.")
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        raise invalid("amount", "must be a number or a decimal string.")
    if not amount.is_finite() or amount <= 0:
        raise invalid("amount", "must be a positive amount.")
    if amount.normalize().as_tuple().exponent < -2:
        raise invalid("amount", "must have at most two decimal places.")
    return amount


def transfer_account(household: Household, payload: dict[str, Any], field: str) -> Account:
    account_id = payload.get(field)
    if not isinstance(account_id, str) or not account_id:
        raise invalid(field, "is required and must be an account id.")
    account = household.account(account_id)
    if account is None:  # another household's account is just as unknown
        raise invalid(field, f"unknown account {account_id!r}.")
    return account


# --- endpoints ----------------------------------------------------------------------------------------


@household_endpoint("GET")
def household_me(request: HttpRequest, household: Household) -> JsonResponse:
    return JsonResponse({"household": {"id": household.id, "name": household.name}})


@household_endpoint("GET")
def account_list(request: HttpRequest, household: Household) -> JsonResponse:
    return JsonResponse({"accounts": [account.as_dict() for account in household.accounts]})


@household_endpoint("GET")  # DELETE (or anything else) is a 405: accounts are never deleted through this API.
def account_detail(request: HttpRequest, household: Household, account_id: str) -> JsonResponse:
    account = household.account(account_id)
    if account is None:
        raise ApiError(404, "account_not_found", f"No account {account_id!r} in this household.")
    return JsonResponse({"account": account.as_dict()})


@household_endpoint("GET")
def transaction_list(request: HttpRequest, household: Household) -> JsonResponse:
    limit = parse_limit(request.GET.get("limit"))
    since = parse_date(request.GET.get("since"), "since")
    account_id = request.GET.get("account_id") or None
    category = request.GET.get("category") or None
    if account_id and household.account(account_id) is None:
        raise ApiError(404, "account_not_found", f"No account {account_id!r} in this household.")
    if category and category not in data.CATEGORIES:
        raise invalid("category", f"must be one of {', '.join(data.CATEGORIES)}.")
    matching = [
        txn
        for txn in household.transactions  # already newest first
        if (account_id is None or txn.account_id == account_id)
        and (category is None or txn.category == category)
        and (since is None or txn.date >= since)
    ]
    page = matching[:limit]
    return JsonResponse(
        {
            "transactions": [txn.as_dict() for txn in page],
            "count": len(page),
            "has_more": len(matching) > len(page),
        }
    )


@household_endpoint("GET")
def spending_summary(request: HttpRequest, household: Household) -> JsonResponse:
    """Spend per category: outgoing amounts only, transfers between own accounts excluded."""
    since = parse_date(request.GET.get("since"), "since")
    totals: dict[str, Decimal] = {}
    counts: dict[str, int] = {}
    for txn in household.transactions:
        if txn.amount < 0 and txn.category != "transfer" and (since is None or txn.date >= since):
            totals[txn.category] = totals.get(txn.category, Decimal(0)) - txn.amount
            counts[txn.category] = counts.get(txn.category, 0) + 1
    ranked = sorted(totals, key=lambda category: (-totals[category], category))
    return JsonResponse(
        {
            "since": since.isoformat() if since else None,
            "until": data.DEMO_TODAY.isoformat(),
            "currency": data.CURRENCY,
            "categories": [{"category": c, "total": data.money(totals[c]), "count": counts[c]} for c in ranked],
            "total": data.money(sum(totals.values(), Decimal(0))),
        }
    )


@household_endpoint("POST")
def create_transfer(request: HttpRequest, household: Household) -> JsonResponse:
    payload = parse_json_object(request)
    source = transfer_account(household, payload, "from_account_id")
    target = transfer_account(household, payload, "to_account_id")
    if source.id == target.id:
        raise invalid("to_account_id", "must differ from from_account_id.")
    amount = parse_amount(payload.get("amount"))
    memo = payload.get("memo")
    if memo is None:
        memo = ""
    if not isinstance(memo, str) or len(memo) > MAX_MEMO_LENGTH:
        raise invalid("memo", f"must be a string of at most {MAX_MEMO_LENGTH} characters.")
    if amount > source.balance:
        raise ApiError(
            400,
            "insufficient_funds",
            f"amount: {data.money(amount)} exceeds the {data.money(source.balance)} balance of {source.id}.",
            field="amount",
        )
    # Not persisted and balances do not change: this API stands for the SaaS builder's external system,
    # so a transfer is only validated and acknowledged. The id is a hash of the request, hence deterministic.
    fingerprint = "|".join((household.id, source.id, target.id, data.money(amount), memo))
    transfer_id = "tr-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
    transfer = {
        "id": transfer_id,
        "status": "scheduled",
        "from_account_id": source.id,
        "to_account_id": target.id,
        "amount": data.money(amount),
        "currency": source.currency,
        "memo": memo,
        "scheduled_for": (data.DEMO_TODAY + timedelta(days=1)).isoformat(),
    }
    return JsonResponse({"transfer": transfer}, status=201)
