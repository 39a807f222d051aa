"""Weighted random draws for the demo data: cumulative weights, picking from them, and how many model calls
each session makes."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence

MAX_CALL_WEIGHT = 40.0  # caps the Pareto weight of one session, so no session takes most of the calls


def cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


def pick(rng: random.Random, cum: list[float]) -> int:
    """The index of one weight, drawn in proportion to the weights `cum` accumulates."""
    return bisect.bisect_right(cum, rng.random() * cum[-1])


def allocate_calls(rng: random.Random, sessions: int, usage_rows: int) -> list[int]:
    """How many model calls each session makes: exactly `usage_rows` in total, at least one each when
    there are enough, heavily skewed (a few long sessions, many short ones)."""
    if sessions == 0:
        return []
    if usage_rows < sessions:
        calls = [1] * usage_rows + [0] * (sessions - usage_rows)
        rng.shuffle(calls)
        return calls
    weights = [min(rng.paretovariate(1.6), MAX_CALL_WEIGHT) for _ in range(sessions)]
    total_weight = sum(weights)
    extra = usage_rows - sessions
    calls = [1 + int(extra * w / total_weight) for w in weights]
    remainder = usage_rows - sum(calls)
    cum = cumulative(weights)
    for _ in range(remainder):
        calls[pick(rng, cum)] += 1
    return calls
