"""Template filters and tags of Studio: money, tokens, scope names, times, Markdown, JSON, query strings."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote

from django import template
from django.utils.html import format_html, format_html_join

from scoping.context import GLOBAL_SCOPE
from studio import formatting
from studio.filters import query_string
from studio.markdown import MarkdownBudget, render_markdown
from studio.selectors.labels import ScopeLabels

register = template.Library()


@register.filter
def cost(micros: int | None, unpriced_calls: int | None = 0) -> str:
    """`{{ micros|cost:unpriced_calls }}`: "$1.23", "unpriced", "$1.20 + 3 unpriced"."""
    return formatting.format_cost(micros, int(unpriced_calls or 0))


def figure(row: Any, name: str) -> Any:
    """A figure of an aggregate row: a dict, or a record such as selectors.Totals."""
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


@register.filter
def usage_cost(row: Any) -> str:
    """The cost of an aggregate row with `cost`, `unpriced` and `calls`: "$0.00" with no calls at all."""
    if not figure(row, "calls"):
        return formatting.format_usd(0)
    return formatting.format_cost(figure(row, "cost"), int(figure(row, "unpriced") or 0))


def previous_figure(totals: Any, name: str) -> str:
    previous = totals.previous
    value = figure(previous, name)
    if name == "cost":
        return usage_cost(previous)
    if name.endswith("_tokens"):
        return formatting.format_tokens(value)
    return formatting.format_int(value)


@register.simple_tag
def change_note(totals: Any, name: str) -> str:
    """A figure against the previous period of the same length (selectors.Totals.changes): "▲ +12%",
    "▼ −3.5%", "new" (nothing before) or "no change", then "vs <previous value>". Nothing when the range
    has no previous period (all time, an open start)."""
    change = totals.changes.get(name) if totals is not None else None
    if change is None:
        return ""
    text = formatting.format_change(change.percent, new=change.new)
    css = "change-new" if change.new else formatting.change_direction(change.percent)
    return format_html(
        '<span class="stat-change {}" data-figure="{}" data-previous="{}" data-change="{}">{} '
        '<span class="change-vs">vs {}</span></span>',
        css,
        name,
        "" if change.previous is None else change.previous,
        "new" if change.new else ("" if change.percent is None else f"{change.percent:.4f}"),
        text,
        previous_figure(totals, name),
    )


@register.filter
def latency(estimate: Any) -> str:
    """A latency percentile from the histogram: "≈ 1.2 s", "< 16 ms", "≥ 262 s"; "—" without calls."""
    return formatting.format_latency_estimate(estimate)


@register.filter
def usd(micros: int | None) -> str:
    return formatting.format_usd(int(micros or 0))


@register.filter
def tokens(count: int | None) -> str:
    return formatting.format_tokens(count)


@register.filter
def num(count: int | None) -> str:
    return formatting.format_int(count)


@register.filter
def short_scope(scope_id: str) -> str:
    return formatting.short_scope(scope_id)


@register.filter
def duration(ms: int | None) -> str:
    return formatting.format_duration_ms(ms)


@register.filter
def ts(value: datetime | None) -> str:
    return formatting.format_timestamp(value)


@register.filter
def iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


@register.filter
def markdown(text: str | None, budget: MarkdownBudget | None = None):
    """`{{ text|markdown }}`, or `{{ text|markdown:budget }}` on a page that shares a MarkdownBudget."""
    return render_markdown(text, budget)


@register.filter
def pretty_json(value: Any) -> str:
    """JSON, indented; a string that holds JSON is parsed first (tool results are often JSON text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
        if isinstance(value, str):
            return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


@register.filter
def get_item(mapping: dict, key: Any) -> Any:
    return mapping.get(key) if mapping else None


@register.simple_tag(takes_context=True)
def qs(context, **changes: Any) -> str:
    """The current query string with parameters changed: `{% qs after=page.older before=None %}`. A link
    that changes anything else starts again at the first page (drops `page`)."""
    changes.setdefault("page", None)
    return query_string(context["request"].GET, **changes)


@register.simple_tag(takes_context=True)
def scope_name(context, scope_id: str, link: str = "", *, hint: str = "", as_text: bool = False) -> str:
    """A scope as people read it: its label first, then its id shown short ("Acme Hotels · tenant_01H…"), or
    the id alone when it has no label; "global" for the global scope. The full id is in the title. Labels
    come from the page's `scope_labels` (studio.selectors.labels: one query per page, never per row).
    `link`: an address to make it a link (`hint`: what following it does, added to the title); `as_text`:
    plain text (breadcrumbs, titles)."""
    label = page_labels(context).of(scope_id)
    short = formatting.short_scope(scope_id)
    if as_text:
        return formatting.display_scope_name(scope_id, label)
    title = "the global scope (empty scope id)" if scope_id == GLOBAL_SCOPE else scope_id
    css = "scope-id scope-global" if scope_id == GLOBAL_SCOPE else "scope-id"
    if label:
        css += " scope-named"
        title = f"{label} · {title}"
        content = format_html(
            '<span class="scope-label">{}</span><span class="scope-sep" aria-hidden="true"> · </span>'
            '<span class="scope-raw">{}</span>',
            label,
            short,
        )
    else:
        content = format_html("{}", short)
    if link:
        title = f"{title}: {hint}" if hint else title
        return format_html('<a class="{}" href="{}" title="{}">{}</a>', css, link, title, content)
    return format_html('<span class="{}" title="{}">{}</span>', css, title, content)


@register.simple_tag(takes_context=True)
def scope_label(context, scope_id: str) -> str:
    """`{% scope_label scope_id as label %}`: the scope's label from the page's `scope_labels` ("" if none)."""
    return page_labels(context).of(scope_id)


def page_labels(context) -> ScopeLabels:
    return context.get("scope_labels") or ScopeLabels()


@register.filter
def with_scope(address: str, scope_id: str) -> str:
    """`{{ base|with_scope:scope_id }}`: a per-scope page's address, `?scope=` with the id percent-encoded."""
    return f"{address}?scope={quote(scope_id, safe='')}"


@register.simple_tag(takes_context=True)
def hidden_params(context, *excluded: str) -> str:
    """Hidden inputs carrying the current GET parameters except `excluded` (and any page number or
    cursor), so a filter form changes one thing and keeps the rest. An empty `scope` is kept: it means the
    global scope. A value with a NUL character is left out (no page accepts one, and HTML cannot hold it)."""
    skip = {*excluded, "after", "before", "page"}
    params = context["request"].GET.lists()
    return format_html_join(
        "",
        '<input type="hidden" name="{}" value="{}">',
        (
            (name, value)
            for name, values in params
            if name not in skip and "\x00" not in name
            for value in values
            if "\x00" not in value
        ),
    )


@register.filter
def cost_html(row: dict[str, Any]) -> str:
    """The cost of an aggregate row for a table cell: the amount, then "+ N unpriced" in small type."""
    calls = row.get("calls")
    cost_value = row.get("cost")
    unpriced = int(row.get("unpriced") or 0)
    if not calls:
        return formatting.format_usd(0)
    if cost_value is None:
        return format_html('<span class="unpriced">{}</span>', formatting.UNPRICED)
    if unpriced:
        return format_html(
            '{} <span class="unpriced-note">+ {} unpriced</span>', formatting.format_usd(cost_value), f"{unpriced:,}"
        )
    return formatting.format_usd(cost_value)


@register.filter
def is_text(value: Any) -> bool:
    return isinstance(value, str)


@register.filter
def compact_json(value: Any) -> str:
    """JSON on one line (for previews)."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        return repr(value)


# The daily trend's bars and table: up to hundreds of rows (a year), built in one pass here rather than by
# template loops, which cost ten times as much per row.


@register.simple_tag
def chart_bars(chart: Any) -> str:
    """The cost bars of studio.charts.Chart as SVG rects, each with its title."""
    return format_html_join(
        "",
        '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
        (
            (
                "bar-rect bar-unpriced" if bar.unpriced_only else "bar-rect",
                bar.x,
                bar.y,
                bar.width,
                bar.height,
                bar.title,
            )
            for bar in chart.bars
        ),
    )


@register.simple_tag
def daily_rows(points: list[Any]) -> str:
    """The rows of the daily numbers table (studio.selectors.DayPoint), figures in data attributes too."""
    return format_html_join(
        "",
        '<tr data-day="{}" data-cost="{}" data-tokens="{}" data-calls="{}"><td>{}</td><td class="num">{}</td>'
        '<td class="num">{}</td><td class="num">{}</td></tr>',
        (
            (
                point.day.isoformat(),
                "" if point.cost is None else point.cost,
                point.tokens,
                point.calls,
                point.day.strftime("%Y-%m-%d %a"),
                formatting.format_cost(point.cost, point.unpriced) if point.calls else "—",
                formatting.format_int(point.tokens),
                formatting.format_int(point.calls),
            )
            for point in points
        ),
    )
