"""Figures of a set of streams (time to `done`, CPU per message), goals with a verdict, and plain tables."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass

from benchmarks.streams import StreamResult


def out(text: str = "") -> None:
    print(text, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def divide(value: float, base: float) -> float:
    return value / base if base and not math.isnan(base) and not math.isnan(value) else math.nan


@dataclass
class Stats:
    """Streams of one kind and the server CPU they used (measured around them, sequential or at once)."""

    label: str
    results: list[StreamResult]
    cpu_seconds: float = 0.0

    @property
    def ok(self) -> list[StreamResult]:
        return [r for r in self.results if r.ok]

    @property
    def errors(self) -> Counter[str]:
        return Counter(r.problem for r in self.results if not r.ok)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def done_times(self) -> list[float]:
        return [r.done_seconds if r.done_seconds is not None else r.seconds for r in self.ok]

    def done_p(self, fraction: float) -> float:
        return percentile(self.done_times(), fraction)

    def done_mean(self) -> float:
        return mean(self.done_times())

    def first_frame_p(self, fraction: float) -> float:
        return percentile([r.first_frame_seconds for r in self.ok if r.first_frame_seconds is not None], fraction)

    @property
    def cpu_per_message(self) -> float:
        return self.cpu_seconds / len(self.results) if self.results else math.nan

    def merged(self, other: Stats) -> Stats:
        return Stats(self.label, self.results + other.results, self.cpu_seconds + other.cpu_seconds)


@dataclass
class Goal:
    """One measured figure of the summary; `limit` None means it is printed, not judged."""

    provider: str
    goal: str
    value: float
    limit: float | None
    unit: str = "x"
    note: str = ""

    @property
    def measured(self) -> str:
        if math.isnan(self.value):
            return "-"
        if self.unit == "x":
            return f"{self.value:.2f}x"
        return f"{self.value:g} {self.unit}".strip() if self.unit != "MiB" else f"{self.value:.1f} MiB"

    @property
    def target(self) -> str:
        if self.limit is None:
            return "(printed)"
        return f"<= {self.limit:g}x" if self.unit == "x" else f"<= {self.limit:g}"

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return "-"
        if math.isnan(self.value):
            return "n/a"
        return "PASS" if self.value <= self.limit else "MISS"


def ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.2f}"


def times(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.2f}x"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def describe_errors(errors: Counter[str]) -> str:
    return ", ".join(f"{kind} x{n}" for kind, n in errors.most_common()) or "none"


def print_table(rows: list[list[str]], header: list[str], indent: str = "  ", left: int = 1) -> None:
    """Columns padded to their widest cell: the first `left` aligned left, the others right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    line = "  ".join(f"{{:<{w}}}" if i < left else f"{{:>{w}}}" for i, w in enumerate(widths))
    out(indent + line.format(*header))
    out(indent + "  ".join("-" * w for w in widths))
    for row in rows:
        out(indent + line.format(*row))
