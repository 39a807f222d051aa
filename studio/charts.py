"""The daily trend chart as plain SVG geometry (no JavaScript, no CDN): cost bars and a token line."""

from __future__ import annotations

import math
from dataclasses import dataclass

from studio.formatting import format_tokens, format_usd
from studio.selectors import DayPoint

WIDTH = 760
HEIGHT = 230
LEFT = 64
RIGHT = 56
TOP = 14
BOTTOM = 30
MAX_X_LABELS = 8
GRID_LINES = 4


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str
    unpriced_only: bool


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    line: str  # SVG polyline points
    dots: list[Label]  # (x, y, title) of each token point
    grid: list[Label]  # y and left label (cost) of each grid line
    right_labels: list[Label]
    x_labels: list[Label]
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    empty: bool


def _nice_scale(value: float) -> tuple[float, int]:
    """The smallest of 1, 2, 2.5, 5 × 10^n that is at least `value`, and a number of grid steps that
    keeps the grid labels round (1 → 4 × 0.25, 2 → 4 × 0.5, 2.5 → 5 × 0.5, 5 → 5 × 1)."""
    if value <= 0:
        return 1.0, GRID_LINES
    magnitude = 10 ** math.floor(math.log10(value))
    for step, lines in ((1, 4), (2, 4), (2.5, 5), (5, 5), (10, 4)):
        if step * magnitude >= value * (1 - 1e-12):
            return step * magnitude, lines
    return 10 * magnitude, 4


def daily_chart(points: list[DayPoint]) -> Chart:
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    bottom = TOP + plot_h
    count = max(len(points), 1)
    slot = plot_w / count
    bar_w = max(1.0, slot * 0.72)
    max_cost, cost_lines = _nice_scale(max((p.cost or 0 for p in points), default=0))
    max_tokens, token_lines = _nice_scale(max((p.tokens for p in points), default=0))
    bars: list[Bar] = []
    line: list[str] = []
    dots: list[Label] = []
    for index, point in enumerate(points):
        x = LEFT + index * slot + (slot - bar_w) / 2
        cost = point.cost or 0
        height = plot_h * cost / max_cost if max_cost else 0
        cost_text = "unpriced" if point.cost is None and point.calls else format_usd(cost)
        if point.unpriced and point.cost is not None:
            cost_text += f" + {point.unpriced} unpriced"
        title = (
            f"{point.day.isoformat()}: {cost_text}, {format_tokens(point.tokens)} tokens, {point.calls:,} model calls"
        )
        bars.append(
            Bar(
                round(x, 2),
                round(bottom - height, 2),
                round(bar_w, 2),
                round(height, 2),
                title,
                unpriced_only=point.cost is None and point.calls > 0,
            )
        )
        cx = LEFT + index * slot + slot / 2
        cy = bottom - plot_h * point.tokens / max_tokens if max_tokens else bottom
        line.append(f"{cx:.1f},{cy:.1f}")
        dots.append(Label(round(cx, 1), round(cy, 1), f"{point.day.isoformat()}: {point.tokens:,} tokens"))
    grid = []
    for step in range(cost_lines + 1):
        y = bottom - plot_h * step / cost_lines
        grid.append(Label(LEFT - 6, round(y, 1), format_usd(round(max_cost * step / cost_lines))))
    right = []
    for step in range(token_lines + 1):
        y = bottom - plot_h * step / token_lines
        right.append(Label(WIDTH - RIGHT + 6, round(y, 1), format_tokens(round(max_tokens * step / token_lines))))
    x_labels = []
    if points:
        every = max(1, -(-len(points) // MAX_X_LABELS))
        for index in range(0, len(points), every):
            cx = LEFT + index * slot + slot / 2
            x_labels.append(Label(round(cx, 1), HEIGHT - 10, points[index].day.strftime("%b %-d")))
    return Chart(
        WIDTH,
        HEIGHT,
        bars,
        " ".join(line),
        dots,
        grid,
        right,
        x_labels,
        LEFT,
        WIDTH - RIGHT,
        TOP,
        bottom,
        empty=not any(p.calls for p in points),
    )
