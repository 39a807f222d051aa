"""What a model call costs, in integer micro-dollars.

Prices are USD per million tokens, written in micro-dollars (3 USD = 3_000_000). A row in `ModelPrice`
(edited in admin) overrides the table. A model id matches a family or its dated snapshot or alias
(`claude-sonnet-4-5-20250929`, `claude-3-5-haiku-latest`), which takes the family's price. A model found
nowhere has no cost: `None`, shown as "unpriced", never as $0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MICROS_PER_USD = 1_000_000
TOKENS_PER_PRICE_UNIT = 1_000_000
CACHE_READ_SHARE = (1, 10)  # 10% of the input price
CACHE_WRITE_SHARE = (5, 4)  # 125% of the input price


@dataclass(frozen=True)
class Price:
    input: int
    output: int
    cache_read: int | None = None
    cache_write: int | None = None

    @property
    def effective_cache_read(self) -> int:
        if self.cache_read is not None:
            return self.cache_read
        return self.input * CACHE_READ_SHARE[0] // CACHE_READ_SHARE[1]

    @property
    def effective_cache_write(self) -> int:
        if self.cache_write is not None:
            return self.cache_write
        return self.input * CACHE_WRITE_SHARE[0] // CACHE_WRITE_SHARE[1]


def usd(amount: float) -> int:
    return round(amount * MICROS_PER_USD)


PRICE_TABLE: dict[str, Price] = {
    "claude-opus-4-5": Price(usd(5), usd(25)),
    "claude-opus-4-1": Price(usd(15), usd(75)),
    "claude-opus-4": Price(usd(15), usd(75)),
    "claude-sonnet-4-5": Price(usd(3), usd(15)),
    "claude-sonnet-4": Price(usd(3), usd(15)),
    "claude-3-7-sonnet": Price(usd(3), usd(15)),
    "claude-3-5-sonnet": Price(usd(3), usd(15)),
    "claude-haiku-4-5": Price(usd(1), usd(5)),
    "claude-3-5-haiku": Price(usd(0.8), usd(4)),
    "claude-3-haiku": Price(usd(0.25), usd(1.25)),
}


# What may follow a family name: a dated snapshot or an alias. Anything else is another model
# (`claude-opus-4-6` is not `claude-opus-4`), so it stays unpriced rather than priced wrongly.
SNAPSHOT_SUFFIX = re.compile(r"-(\d{8}|latest)")


def price_from_table(model: str, table: dict[str, Price] = PRICE_TABLE) -> Price | None:
    matches = [
        prefix
        for prefix in table
        if model == prefix or (model.startswith(prefix) and SNAPSHOT_SUFFIX.fullmatch(model[len(prefix) :]))
    ]
    return table[max(matches, key=len)] if matches else None


def cost_micros(
    price: Price | None,
    *,
    input_tokens: int,
    output_tokens: int,
    cache_read_tokens: int = 0,
    cache_write_tokens: int = 0,
) -> int | None:
    if price is None:
        return None
    total = (
        input_tokens * price.input
        + output_tokens * price.output
        + cache_read_tokens * price.effective_cache_read
        + cache_write_tokens * price.effective_cache_write
    )
    return (total + TOKENS_PER_PRICE_UNIT // 2) // TOKENS_PER_PRICE_UNIT


def price_for_model(model: str) -> Price | None:
    """The admin override when there is one, else the table (one indexed query)."""
    from agents.models import ModelPrice

    override = ModelPrice.objects.filter(model=model).first()
    if override is not None:
        return Price(
            override.input_micros_per_mtok,
            override.output_micros_per_mtok,
            override.cache_read_micros_per_mtok,
            override.cache_write_micros_per_mtok,
        )
    return price_from_table(model)
