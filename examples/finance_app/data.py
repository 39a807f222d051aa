"""Deterministic, in-code data for the demo finance app API.

This module stands for the SaaS builder's own system of record (an external system from the runtime's point
of view), so there is no database and no migration: two households, their accounts and about 60 days of
transactions, all dated relative to the fixed anchor ``DEMO_TODAY`` so every response is reproducible.
Each household has its own merchants so that tenant isolation is easy to see in a demo.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

DEMO_TODAY = date(2026, 11, 20)
CURRENCY = "USD"
CATEGORIES = ("groceries", "dining", "rent", "salary", "utilities", "transport", "entertainment", "transfer")


def money(value: Decimal) -> str:
    """A decimal amount as the API's string form, always with two decimals ("-12.50")."""
    return f"{value:.2f}"


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    type: str  # checking, savings or credit (a credit balance is negative: the amount owed)
    balance: Decimal
    currency: str = CURRENCY

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "balance": money(self.balance),
            "currency": self.currency,
        }


@dataclass(frozen=True)
class Transaction:
    id: str
    date: date
    merchant: str
    amount: Decimal  # negative for spend, positive for income and incoming transfers
    category: str
    account_id: str
    currency: str = CURRENCY

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "date": self.date.isoformat(),
            "merchant": self.merchant,
            "amount": money(self.amount),
            "currency": self.currency,
            "category": self.category,
            "account_id": self.account_id,
        }


@dataclass(frozen=True)
class Household:
    id: str
    name: str
    token: str
    accounts: tuple[Account, ...]
    transactions: tuple[Transaction, ...]  # newest first

    def account(self, account_id: str) -> Account | None:
        return next((account for account in self.accounts if account.id == account_id), None)


Row = tuple[str, str, str, str, str]  # (ISO date, merchant, amount, category, account id)


def _transactions(prefix: str, rows: list[Row]) -> tuple[Transaction, ...]:
    """Number the rows (given oldest first) and return them newest first."""
    built = [
        Transaction(f"txn-{prefix}-{number:03d}", date.fromisoformat(day), merchant, Decimal(amount), category, acc)
        for number, (day, merchant, amount, category, acc) in enumerate(rows, start=1)
    ]
    return tuple(sorted(built, key=lambda txn: (txn.date, txn.id), reverse=True))


GARCIA = Household(
    id="household-garcia",
    name="Garcia household",
    token="demo-token-garcia-7Qx2",
    accounts=(
        Account("acc-g-checking", "Joint Checking", "checking", Decimal("4218.55")),
        Account("acc-g-savings", "Vacation Savings", "savings", Decimal("12500.00")),
        Account("acc-g-credit", "Sapphire Credit Card", "credit", Decimal("-612.40")),
    ),
    transactions=_transactions(
        "g",
        [
            ("2026-10-01", "Sunset Apartments", "-2150.00", "rent", "acc-g-checking"),
            ("2026-10-02", "Whole Foods Market", "-142.37", "groceries", "acc-g-credit"),
            ("2026-10-04", "La Taqueria", "-38.50", "dining", "acc-g-credit"),
            ("2026-10-07", "PG&E", "-96.12", "utilities", "acc-g-checking"),
            ("2026-10-09", "Clipper Card", "-40.00", "transport", "acc-g-credit"),
            ("2026-10-15", "Acme Corp Payroll", "3850.00", "salary", "acc-g-checking"),
            ("2026-10-16", "Transfer to Vacation Savings", "-500.00", "transfer", "acc-g-checking"),
            ("2026-10-16", "Transfer from Joint Checking", "500.00", "transfer", "acc-g-savings"),
            ("2026-10-18", "AMC Theatres", "-31.00", "entertainment", "acc-g-credit"),
            ("2026-10-21", "Trader Joe's", "-87.64", "groceries", "acc-g-credit"),
            ("2026-10-25", "Blue Bottle Coffee", "-12.75", "dining", "acc-g-credit"),
            ("2026-10-31", "Acme Corp Payroll", "3850.00", "salary", "acc-g-checking"),
            ("2026-11-01", "Sunset Apartments", "-2150.00", "rent", "acc-g-checking"),
            ("2026-11-03", "Whole Foods Market", "-158.02", "groceries", "acc-g-credit"),
            ("2026-11-05", "Sapphire card payment", "-600.00", "transfer", "acc-g-checking"),
            ("2026-11-05", "Payment from Joint Checking", "600.00", "transfer", "acc-g-credit"),
            ("2026-11-06", "PG&E", "-104.88", "utilities", "acc-g-checking"),
            ("2026-11-08", "Netflix", "-15.49", "entertainment", "acc-g-credit"),
            ("2026-11-11", "Clipper Card", "-40.00", "transport", "acc-g-credit"),
            ("2026-11-13", "La Taqueria", "-44.20", "dining", "acc-g-credit"),
            ("2026-11-15", "Acme Corp Payroll", "3850.00", "salary", "acc-g-checking"),
            ("2026-11-17", "Trader Joe's", "-93.18", "groceries", "acc-g-credit"),
        ],
    ),
)

OKAFOR = Household(
    id="household-okafor",
    name="Okafor household",
    token="demo-token-okafor-9Lm4",
    accounts=(
        Account("acc-o-checking", "Everyday Checking", "checking", Decimal("2940.10")),
        Account("acc-o-savings", "Emergency Fund", "savings", Decimal("8075.00")),
    ),
    transactions=_transactions(
        "o",
        [
            ("2026-10-01", "Maple Court Residences", "-1725.00", "rent", "acc-o-checking"),
            ("2026-10-03", "Kroger", "-118.46", "groceries", "acc-o-checking"),
            ("2026-10-05", "Chipotle", "-24.85", "dining", "acc-o-checking"),
            ("2026-10-08", "Duke Energy", "-121.30", "utilities", "acc-o-checking"),
            ("2026-10-10", "Shell", "-48.72", "transport", "acc-o-checking"),
            ("2026-10-12", "Spotify", "-11.99", "entertainment", "acc-o-checking"),
            ("2026-10-15", "Northwind Labs Payroll", "3120.00", "salary", "acc-o-checking"),
            ("2026-10-17", "Aldi", "-76.21", "groceries", "acc-o-checking"),
            ("2026-10-20", "Olive Garden", "-67.40", "dining", "acc-o-checking"),
            ("2026-10-24", "Uber", "-23.15", "transport", "acc-o-checking"),
            ("2026-10-30", "Transfer to Emergency Fund", "-300.00", "transfer", "acc-o-checking"),
            ("2026-10-30", "Transfer from Everyday Checking", "300.00", "transfer", "acc-o-savings"),
            ("2026-10-31", "Northwind Labs Payroll", "3120.00", "salary", "acc-o-checking"),
            ("2026-11-01", "Maple Court Residences", "-1725.00", "rent", "acc-o-checking"),
            ("2026-11-04", "Kroger", "-131.09", "groceries", "acc-o-checking"),
            ("2026-11-07", "Comcast Xfinity", "-79.99", "utilities", "acc-o-checking"),
            ("2026-11-09", "Regal Cinemas", "-28.50", "entertainment", "acc-o-checking"),
            ("2026-11-12", "Shell", "-51.36", "transport", "acc-o-checking"),
            ("2026-11-14", "Aldi", "-69.83", "groceries", "acc-o-checking"),
            ("2026-11-15", "Northwind Labs Payroll", "3120.00", "salary", "acc-o-checking"),
            ("2026-11-18", "Chipotle", "-19.60", "dining", "acc-o-checking"),
        ],
    ),
)

HOUSEHOLDS: tuple[Household, ...] = (GARCIA, OKAFOR)


def household_for_token(token: str) -> Household | None:
    """The household a bearer token belongs to (compared in constant time), or None."""
    presented = token.encode()
    return next((h for h in HOUSEHOLDS if hmac.compare_digest(h.token.encode(), presented)), None)
