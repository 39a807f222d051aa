"""A turn's timeline as plain SVG geometry: one row per model call and tool call, on one time axis.

The SVG is two nested `<svg>`s (studio/templates/studio/includes/waterfall.html, its rows from
`Waterfall.track_markup` and `text_markup`): the outer one is the
page's width and a fixed height in CSS pixels, and holds the text (each row's label on its own line above
its bar, the axis labels at percentages of the width), so the text keeps its size at any width; the inner
one has a `viewBox` TRACK_UNITS wide with `preserveAspectRatio="none"`, and holds the bars and the grid,
which stretch to the page's width. No inline style: classes from studio/static/studio/replay.css.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from studio.formatting import format_duration_ms, format_int, format_tokens
from studio.selectors.replay import Span

TRACK_UNITS = 1000  # the bars' viewBox width: the whole turn
MIN_BAR_UNITS = 6  # an instant (0 ms) still shows: 0.6% of the width
ROW_HEIGHT = 34  # px: a label line and a bar
LABEL_BASELINE = 13  # px below the row's top
BAR_TOP = 18
BAR_HEIGHT = 11
AXIS_HEIGHT = 22  # px under the rows for the time labels
TOOL_INDENT = 14  # px: a tool call's label is indented under its model call
MAX_LABEL_NAME = 32  # characters of a tool or model name in a label (the whole name is in the title)
MAX_TICKS = 5
TICK_STEPS_MS = [
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    1_800_000,
    3_600_000,
]


@dataclass(frozen=True)
class WaterfallBar:
    """One row: its label and hover text, its figures, and its bar's geometry (x and width in track units,
    the row's top in px)."""

    kind: str  # "model" or "tool"
    name: str  # the model, or the tool
    call_number: int  # the model call it is, or belongs to
    label: str
    title: str
    start_ms: int
    duration_ms: int
    failed: bool
    timing: str  # "recorded", "derived" or "unknown" (Span.timing)
    input_tokens: int | None
    output_tokens: int | None
    x: float
    width: float
    top: int
    label_x: int

    @property
    def label_y(self) -> int:
        return self.top + LABEL_BASELINE

    @property
    def css_class(self) -> str:
        classes = ["wf-bar", f"wf-{self.kind}"]
        classes += ["wf-failed"] if self.failed else []
        classes += ["wf-unknown"] if self.timing == "unknown" else []
        return " ".join(classes)

    @property
    def bar_y(self) -> int:
        return self.top + BAR_TOP


@dataclass(frozen=True)
class Tick:
    x: float  # track units
    percent: float  # of the width, for the label in the outer SVG
    label: str
    anchor: str  # "start", "middle" or "end": the first and last labels stay inside


@dataclass(frozen=True)
class Waterfall:
    bars: list[WaterfallBar]
    ticks: list[Tick]
    total_ms: int
    height: int  # px
    rows_height: int  # px: where the axis labels start
    summary: str  # one line: how many steps over how long
    description: str  # the text alternative: every bar's title

    @property
    def track_units(self) -> int:
        return TRACK_UNITS

    @property
    def empty(self) -> bool:
        return not self.bars

    # The repeated elements are written here rather than in the template: a turn can have dozens of bars
    # and a page hundreds, and Django's template engine took about 200 µs a bar (about 30 lookups each).

    def track_markup(self) -> SafeString:
        """The grid lines and the bars (each with its figures as data attributes and a hover title)."""
        grid = format_html_join(
            "",
            '<line class="wf-grid" x1="{0}" x2="{0}" y1="0" y2="{1}"/>',
            ((t.x, self.rows_height) for t in self.ticks),
        )
        bars = format_html_join(
            "\n",
            '<rect class="{}" x="{}" y="{}" width="{}" height="{}" data-kind="{}" data-name="{}" data-start-ms="{}" '
            'data-duration-ms="{}" data-input-tokens="{}" data-output-tokens="{}" data-failed="{}" data-timing="{}">'
            "<title>{}</title></rect>",
            (
                (
                    bar.css_class,
                    bar.x,
                    bar.bar_y,
                    bar.width,
                    BAR_HEIGHT,
                    bar.kind,
                    bar.name,
                    bar.start_ms,
                    bar.duration_ms,
                    "" if bar.input_tokens is None else bar.input_tokens,
                    "" if bar.output_tokens is None else bar.output_tokens,
                    int(bar.failed),
                    bar.timing,
                    bar.title,
                )
                for bar in self.bars
            ),
        )
        return grid + bars

    def text_markup(self) -> SafeString:
        """Each bar's label above it, and the time axis's labels (hidden from screen readers: `desc` says it all)."""
        labels = format_html_join(
            "\n",
            '<text class="wf-label wf-label-{}{}" x="{}" y="{}" aria-hidden="true">{}</text>',
            ((b.kind, " wf-label-failed" if b.failed else "", b.label_x, b.label_y, b.label) for b in self.bars),
        )
        axis = format_html_join(
            "",
            '<text class="wf-tick wf-anchor-{}" x="{}%" y="{}" aria-hidden="true">{}</text>',
            ((tick.anchor, tick.percent, self.height - 6, tick.label) for tick in self.ticks),
        )
        return labels + axis


def _short(name: str) -> str:
    return name if len(name) <= MAX_LABEL_NAME else name[: MAX_LABEL_NAME - 1] + "…"


def _tokens(span: Span, *, compact: bool = False) -> str:
    number = format_tokens if compact else format_int
    return f"{number(span.input_tokens)} in / {number(span.output_tokens)} out"


def _texts(span: Span) -> tuple[str, str]:
    """The label above the bar and the bar's hover title."""
    failed = " · failed" if span.failed else ""
    start = f"starts at +{format_duration_ms(span.start_ms)}"
    duration = "duration not recorded" if span.timing == "unknown" else format_duration_ms(span.duration_ms)
    if span.kind == "model" and span.timing == "unknown":
        label = f"Model call {span.call_number} · no usage recorded{failed}"
        return label, f"{label}: {start} at the latest, length unknown"
    if span.kind == "model":
        label = f"Model call {span.call_number} · {duration} · {_tokens(span, compact=True)}{failed}"
        title = f"Model call {span.call_number} ({span.name}): {start}, {duration}, {_tokens(span)} tokens{failed}"
        return label, title
    label = f"{_short(span.name)} · {duration}{failed}"
    derived = "derived: the model call's end plus the tool calls before it"
    return label, f"Tool call {span.name} of model call {span.call_number}: {start} ({derived}), {duration}{failed}"


def _tick_step(total_ms: int) -> int:
    for step in TICK_STEPS_MS:
        if total_ms / step <= MAX_TICKS:
            return step
    return -(-total_ms // MAX_TICKS)


def _ticks(total_ms: int) -> list[Tick]:
    step = _tick_step(total_ms)
    ticks = []
    for at in range(0, total_ms + 1, step):
        share = at / total_ms
        anchor = "start" if share < 0.08 else "end" if share > 0.92 else "middle"
        ticks.append(Tick(round(share * TRACK_UNITS, 2), round(share * 100, 2), format_duration_ms(at), anchor))
    return ticks


def turn_waterfall(spans: list[Span]) -> Waterfall:
    """The geometry of a turn's timeline (`Turn.timeline`): bars in the order the steps ran, each on its own
    row, so steps that overlap in time stay apart. An empty timeline gives an empty waterfall."""
    total_ms = max([span.end_ms for span in spans] + [1])
    bars = []
    for row, span in enumerate(spans):
        width = max(span.duration_ms / total_ms * TRACK_UNITS, MIN_BAR_UNITS)
        x = min(span.start_ms / total_ms * TRACK_UNITS, TRACK_UNITS - width)
        label, title = _texts(span)
        bars.append(
            WaterfallBar(
                kind=span.kind,
                name=span.name,
                call_number=span.call_number,
                label=label,
                title=title,
                start_ms=span.start_ms,
                duration_ms=span.duration_ms,
                failed=span.failed,
                timing=span.timing,
                input_tokens=span.input_tokens,
                output_tokens=span.output_tokens,
                x=round(max(x, 0), 2),
                width=round(width, 2),
                top=row * ROW_HEIGHT,
                label_x=TOOL_INDENT if span.kind == "tool" else 0,
            )
        )
    rows_height = len(bars) * ROW_HEIGHT
    models = sum(1 for span in spans if span.kind == "model")
    tools = len(spans) - models
    summary = (
        f"{models} model call{'s' if models != 1 else ''} and {tools} tool call{'s' if tools != 1 else ''} "
        f"over {format_duration_ms(total_ms if spans else 0)}"
    )
    return Waterfall(
        bars=bars,
        ticks=_ticks(total_ms) if spans else [],
        total_ms=total_ms if spans else 0,
        height=rows_height + AXIS_HEIGHT if spans else 0,
        rows_height=rows_height,
        summary=summary,
        description="; ".join(bar.title for bar in bars) + ("." if bars else ""),
    )
