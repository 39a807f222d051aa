"""How Studio writes numbers, money, scope ids and times (pure functions, used by the template tags)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scoping.context import GLOBAL_SCOPE

MICROS_PER_USD = 1_000_000
SCOPE_SHORT_MAX = 26  # longer scope ids are shown as head…tail, in full in the title and copy button
SCOPE_HEAD = 14
SCOPE_TAIL = 8
UNPRICED = "unpriced"


def format_usd(micros: int) -> str:
    """An amount of micro-dollars: "$1,234.56", "$0.42", "$0.0042", "<$0.0001", "$0.00"."""
    if micros == 0:
        return "$0.00"
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    usd = micros / MICROS_PER_USD
    if micros < 100:
        return f"{sign}<$0.0001"
    if micros < 9_950:  # still below a cent at four decimals
        return f"{sign}${usd:.4f}"
    return f"{sign}${usd:,.2f}"


def format_dollars(micros: int) -> str:
    """Micro-dollars as a plain decimal number of dollars, exact (for CSV): "1.234567", "0.000600"."""
    sign = "-" if micros < 0 else ""
    whole, fraction = divmod(abs(micros), MICROS_PER_USD)
    return f"{sign}{whole}.{fraction:06d}"


def format_cost(micros: int | None, unpriced_calls: int = 0) -> str:
    """A cost that may be partly or wholly unpriced. Unpriced is never shown as $0.

    - `None` (a usage row or an aggregate of only unpriced rows): "unpriced".
    - `0` with unpriced calls (a session's running total): "unpriced".
    - some priced and some unpriced calls: "$1.20 + 3 unpriced".
    """
    if micros is None or (micros == 0 and unpriced_calls):
        return UNPRICED
    amount = format_usd(micros)
    if unpriced_calls:
        return f"{amount} + {unpriced_calls:,} {UNPRICED}"
    return amount


def _compact(value: float) -> str:
    text = f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_tokens(count: int | None) -> str:
    """A compact token count: 999, 12.3k, 4.56M, 1.2B."""
    count = int(count or 0)
    units = ((1_000_000_000, "B"), (1_000_000, "M"), (1000, "k"))
    for index, (size, suffix) in enumerate(units):
        if count >= size:
            text = _compact(count / size)
            if float(text) >= 1000 and index > 0:  # 999,999 rounds to 1000k: say 1M
                bigger, bigger_suffix = units[index - 1]
                return _compact(count / bigger) + bigger_suffix
            return text + suffix
    return str(count)


def format_int(count: int | None) -> str:
    return f"{int(count or 0):,}"


def short_scope(scope_id: str) -> str:
    """A long opaque scope id shortened to head…tail (the full id goes into a title attribute)."""
    if scope_id == GLOBAL_SCOPE:
        return "global"
    if len(scope_id) <= SCOPE_SHORT_MAX:
        return scope_id
    return f"{scope_id[:SCOPE_HEAD]}…{scope_id[-SCOPE_TAIL:]}"


def display_scope_name(scope_id: str, label: str = "") -> str:
    """One line of plain text: "Acme Hotels · tenant:acme-3:wo…1c2d3e4f", or the short id alone."""
    short = short_scope(scope_id)
    return f"{label} · {short}" if label else short


def format_duration_ms(ms: int | None) -> str:
    ms = int(ms or 0)
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(ms // 1000, 60)
    return f"{minutes} min {seconds} s"


def format_change(percent: float | None, *, new: bool) -> str:
    """A change against the previous period: "▲ +12%", "▼ −3.5%", "±0%", "new", or "no change" (zero
    then and now)."""
    if new:
        return "new"
    if percent is None:
        return "no change"
    if abs(percent) < 0.05:
        return "±0%"
    digits = 0 if abs(percent) >= 10 else 1
    arrow = "▲" if percent > 0 else "▼"
    sign = "+" if percent > 0 else "−"
    return f"{arrow} {sign}{abs(percent):,.{digits}f}%"


def change_direction(percent: float | None) -> str:
    if percent is None or abs(percent) < 0.05:
        return "change-flat"
    return "change-up" if percent > 0 else "change-down"


def format_latency_estimate(estimate: Any) -> str:
    """A percentile estimate (agents.usage_rollup.LatencyEstimate: ms within [low, high))."""
    if estimate is None:
        return "—"
    if estimate.high is None:
        return f"≥ {format_duration_ms(estimate.low)}"
    if estimate.low == 0:
        return f"< {format_duration_ms(estimate.high)}"
    return f"≈ {format_duration_ms(estimate.ms)}"


def format_timestamp(value: datetime | None) -> str:
    """UTC, to the second: "2025-11-27 21:43:05"."""
    if value is None:
        return "—"
    return value.strftime("%Y-%m-%d %H:%M:%S")
