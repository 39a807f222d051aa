"""The made-up words of the demo data: scope ids, what users ask, what the agent answers, memory facts and
preference values. Everything is drawn from the generator's seeded `random.Random`."""

from __future__ import annotations

import itertools
import random
import string
import uuid
from datetime import datetime, timedelta

from scoping.context import GLOBAL_SCOPE

# (topic, first message); a session's final answers are drawn from its topic's answers.
FIRST_PROMPTS = [
    ("spending", "How much did we spend on groceries last month?"),
    ("balance", "What's the balance of our joint checking account?"),
    ("transactions", "Show me all transactions over $200 in October"),
    ("budget", "Are we on track with the dining out budget this month?"),
    ("memory", "Remember that rent is due on the 1st of every month"),
    ("transfer", "Move $250 from savings to checking"),
    ("spending", "Summarise our spending by category for the last 30 days"),
    ("bills", "Why did the utilities bill jump in September?"),
    ("preferences", "Set my preferred currency to EUR"),
    ("bills", "Which subscriptions do we pay for every month?"),
    ("preferences", "Show my preferences"),
    ("income", "How much income did we have this quarter?"),
    ("spending", "Compare transport spending this month with last month"),
    ("income", "Did the salary payment arrive yet?"),
    ("transactions", "Find the transaction from the hardware store last week"),
    ("budget", "Can you set up a monthly budget of $600 for groceries?"),
    ("spending", "What did we spend at restaurants on weekends?"),
    ("balance", "List the accounts of the household"),
    ("transfer", "Transfer $1,200 to the landlord for rent"),
    ("budget", "How much is left in the entertainment budget?"),
    ("transactions", "Explain the pending transactions on the credit card"),
    ("budget", "We're saving for a holiday: how much can we put aside each month?"),
    ("spending", "What are our three biggest expenses this year?"),
    ("preferences", "Please answer in short bullet points from now on"),
]
FOLLOW_UPS = [
    "And the month before?",
    "Can you break that down by week?",
    "Yes, go ahead.",
    "No, cancel that.",
    "Only the card ending in 4421, please.",
    "What about the savings account?",
    "Thanks! Also remember that we get paid on the 25th.",
    "Which merchant was the largest?",
    "Show it as a list.",
    "Is that more than usual?",
    "Approve the transfer.",
    "Use EUR for the amounts.",
]
ANSWERS = {
    "spending": [
        "You spent **${a:,.2f}** between {d1} and {d2}, across {n} transactions.\n\n"
        "- Largest: *FreshMart* (${b:,.2f})\n- Smallest: corner shop (${c:,.2f})\n\nThat is {p}% of the budget.",
        "Spending by category (last 30 days):\n\n| Category | Amount | Transactions |\n|:--|--:|--:|\n"
        "| Rent | ${a:,.2f} | 1 |\n| Groceries | ${b:,.2f} | {n} |\n| Transport | ${c:,.2f} | {p} |\n\n"
        "- **Fixed costs**\n  - Rent, paid on the 1st\n  - Insurance\n- **Day to day**\n  - Groceries: mostly "
        "*FreshMart*\n  - Transport\n    - City Transit pass\n\nDetails: https://app.example.com/reports/spending",
        "This month: **${b:,.2f}**; last month: ${a:,.2f}. The difference is mostly `transport` ({p}% lower).",
    ],
    "balance": [
        "The joint checking account holds **${a:,.2f}** as of {d2}.",
        "The household has two accounts:\n\n1. Checking: ${a:,.2f}\n2. Savings: ${b:,.2f}",
    ],
    "transactions": [
        "Here are the transactions over $200:\n\n| Date | Merchant | Amount |\n|---|---|--:|\n"
        "| {d1} | Rent | ${a:,.2f} |\n| {d2} | Insurance | ${b:,.2f} |\n| {d2} | Electronics store | ${c:,.2f} |\n\n"
        "1. Rent and insurance are **recurring**:\n   - rent monthly\n   - insurance quarterly\n"
        "2. The electronics purchase is a one-off.",
        "I found it: **Hardware Hub**, ${c:,.2f} on {d2} (card ending 4421).",
        "There are {n} pending transactions on the credit card, ${b:,.2f} in total; they usually settle in 1-3 days.",
    ],
    "budget": [
        "You are at **{p}%** of the budget with {n} days left. At this pace you would end the month about "
        "${c:,.2f} over.",
        "Done: the monthly budget is set to **${b:,.2f}**. I'll warn you at 80%.",
        "${c:,.2f} is left for this month ({p}% used).",
    ],
    "memory": ["Done: I'll remember that. You can ask me to `list` what I remember at any time."],
    "transfer": [
        "I prepared the transfer of **${a:,.2f}**. It needs your approval before I send it: reply *approve* "
        "to confirm.",
        "The transfer of ${a:,.2f} was sent on {d2}; reference `TRF-{n}{p}`.",
    ],
    "bills": [
        "The September bill was ${a:,.2f}, up {p}% from August; the statement shows a one-off meter "
        "correction of ${c:,.2f}.",
        "You pay for {n} subscriptions, ${c:,.2f} a month in total:\n\n- Streamly\n- CloudDrive\n- Gym",
    ],
    "preferences": [
        "Your preferences: currency **EUR**, budget period *monthly*, answers `short`.",
        "Saved: I'll use that from now on.",
    ],
    "income": [
        "Income this quarter: **${a:,.2f}** (salary and one refund of ${c:,.2f}).",
        "Yes: the salary of ${a:,.2f} arrived on {d2}.",
    ],
    "unavailable": [
        "I could not reach the finance app just now, so I can't confirm that figure. Please try again in a minute.",
    ],
}
INTERRUPTED_TEXT = "Let me look that up. The transactions for {d1} show"
TOOL_PREAMBLES = ["", "", "Let me look that up.", "I'll check the transactions.", "One moment, checking."]
MEMORY_FACTS = [
    "Rent is due on the 1st of every month.",
    "Salary arrives on the 25th.",
    "Prefers answers in short bullet points.",
    "Saving for a holiday in Portugal next summer.",
    "The card ending in 4421 is the shared household card.",
    "Groceries budget is $600 a month.",
    "Does not want transfers above $1,000 without a phone call.",
    "Uses EUR for reports.",
    "Their child's allowance is $20 a week.",
    "Car insurance renews in March.",
    "Pays the landlord by bank transfer, reference FLAT-12.",
    "Wants a reminder when dining out passes 80% of its budget.",
]
PREFERENCE_VALUES = {
    "currency": ["USD", "EUR", "GBP", "CAD"],
    "budget_period": ["monthly", "weekly", "biweekly"],
    "answer_style": ["short", "detailed", "bullet points"],
    "language": ["en", "es", "de", "fr"],
    "notify_over_budget": ["yes", "no"],
}


def scope_ids(rng: random.Random, count: int) -> list[str]:
    """`count` distinct scope ids of mixed styles; the global scope is one of them (when count > 1)."""
    alphabet = string.ascii_letters + string.digits
    words = [
        "acme",
        "globex",
        "initech",
        "umbrella",
        "hooli",
        "stark",
        "wayne",
        "wonka",
        "tyrell",
        "cyberdyne",
        "soylent",
        "vandelay",
        "pied-piper",
        "aperture",
        "black-mesa",
        "monarch",
    ]
    ids: list[str] = [GLOBAL_SCOPE] if count > 1 else []
    seen = set(ids)
    number = itertools.count(1)
    while len(ids) < count:
        style = rng.random()
        n = next(number)
        if style < 0.40:
            value = f"household-{n:05d}"
        elif style < 0.65:
            value = "org_" + "".join(rng.choice(alphabet) for _ in range(22))
        elif style < 0.85:
            value = f"tenant:{rng.choice(words)}-{n}:workspace:{uuid.UUID(int=rng.getrandbits(128), version=4)}"
        elif style < 0.95:
            value = f"user:{rng.choice(['ana', 'li', 'sam', 'noor', 'kofi', 'mila', 'ivan'])}.{n}@example.com"
        else:
            value = f"hh-{n}"
        if value not in seen:
            seen.add(value)
            ids.append(value)
    return ids


LABEL_NAMES = [
    "Acme",
    "Northwind",
    "Blue Harbor",
    "Birchwood",
    "Summit",
    "Redwood",
    "Lakeside",
    "Pinecrest",
    "Silver Line",
    "Harborview",
    "Maple Street",
    "Riverbend",
    "Oakridge",
    "Granite Peak",
    "Brightwater",
    "Evergreen",
    "Kestrel",
    "Sunfield",
]
LABEL_TRADES = [
    "Hotels",
    "Dental",
    "Bakery",
    "Logistics",
    "Fitness",
    "Accounting",
    "Realty",
    "Veterinary",
    "Coffee",
    "Consulting",
    "Outfitters",
    "Pharmacy",
    "Studios",
    "Builders",
    "Law Group",
    "Travel",
    "Farms",
    "Motors",
]
LABEL_PLANS = ["free", "team", "pro", "enterprise"]
LABEL_REGIONS = ["eu-west", "us-east", "us-west", "ap-south"]
LABELLED_SHARE = 0.7


def scope_label(rng: random.Random, scope_id: str) -> tuple[str, dict[str, str]]:
    """The label and metadata a SaaS would set for a customer's scope (SPEC §10); about 30% of scopes, and
    the global scope, have none ("", {})."""
    if scope_id == GLOBAL_SCOPE or rng.random() >= LABELLED_SHARE:
        return "", {}
    name = f"{rng.choice(LABEL_NAMES)} {rng.choice(LABEL_TRADES)}"
    return name, {"plan": rng.choice(LABEL_PLANS), "region": rng.choice(LABEL_REGIONS)}


def money(rng: random.Random, low: float, high: float) -> float:
    return round(rng.uniform(low, high), 2)


def answer_text(rng: random.Random, day: datetime, topic: str) -> str:
    template = rng.choice(ANSWERS["unavailable" if rng.random() < 0.04 else topic])
    return template.format(
        a=money(rng, 40, 3200),
        b=money(rng, 20, 900),
        c=money(rng, 3, 120),
        n=rng.randint(2, 31),
        p=rng.randint(5, 140),
        d1=(day - timedelta(days=30)).date().isoformat(),
        d2=day.date().isoformat(),
    )


# End users' comments beside their ratings (studio.demo.sessions.SessionMaker.feedback).
POSITIVE_COMMENTS = [
    "Exactly what I needed, thanks!",
    "Clear and quick.",
    "The breakdown by category was really helpful.",
    "Saved me a lot of time.",
]
NEGATIVE_COMMENTS = [
    "It missed last week's transactions.",
    "Too slow, I gave up waiting.",
    "The totals don't match my bank statement.",
    "Not what I asked for.",
]
