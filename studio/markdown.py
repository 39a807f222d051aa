"""Conversation text as safe HTML: CommonMark parsed by markdown-it-py, then sanitised by nh3.

What is rendered: CommonMark (paragraphs, headings, lists nested to any depth, quotes, code spans and
blocks, emphasis, links), plus GitHub-style tables and ~~strikethrough~~, and bare http(s) URLs made links
(linkify-it-py, without "fuzzy" links: `report.py` stays text). A single newline is a line break, as in a
chat. Headings start at `<h4>`, below the page's own.

Safety, in layers:
1. markdown-it-py runs with `html` disabled: raw HTML in a message is text (escaped), never markup.
2. Links (inline, reference, autolink, linkified) are made only for http, https and mailto URLs; any other
   scheme (javascript:, data:, vbscript:, file:, relative paths...) leaves the Markdown as text. The check
   runs on the URL after entity and percent decoding, as markdown-it normalises it.
3. The HTML is then cleaned by nh3 (ammonia) against an allow-list of the tags and attributes this module
   produces: no `style`, no event attributes, no `src`, only http/https/mailto `href`s (relative ones are
   dropped), and links get `rel="nofollow noopener noreferrer"` and open in a new tab.

Images are never loaded: `![alt](url)` becomes its alt text, linked to the URL (a plain span inside a
link). An image fetched from a URL chosen by a user or a model would tell that URL's owner when an operator
reads the session (a tracking pixel), and the page's Content-Security-Policy (`img-src 'self'`) would block
it anyway; the alt text and the link keep what the message meant.

Rendering time grows with the text: markdown-it-py takes about 5-15 µs a character of ordinary Markdown
and up to about 40 µs for the worst shapes (thousands of unclosed `[` or `![`). So only the first
`MAX_MARKDOWN_CHARS` of a message are parsed as Markdown, and a page may share a `MarkdownBudget` among its
messages; past either limit the text is shown whole, as escaped plain text, after a note.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nh3
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import OptionsDict

MAX_MARKDOWN_CHARS = 20_000  # about 5k tokens: a long model answer; past it, a message is shown as plain text
PAGE_MARKDOWN_CHARS = 200_000  # a MarkdownBudget for a page of many messages (replay)
CACHED_TEXTS = 2048
CACHED_MAX_CHARS = 4_000
SAFE_URL_SCHEMES = frozenset({"http", "https", "mailto"})
HEADING_SHIFT = 3  # `#` is <h4>: the page has h1 (session), h2 (turns) and h3 (tool call parts)
ALIGN_CLASSES = {"left": "align-left", "center": "align-center", "right": "align-right"}

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "strong",
    "em",
    "s",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h4",
    "h5",
    "h6",
    "div",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "a",
    "span",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
ALLOWED_CLASSES = {
    "div": {"md-table"},
    "a": {"md-image"},
    "span": {"md-image"},
    "th": set(ALIGN_CLASSES.values()),
    "td": set(ALIGN_CLASSES.values()),
}

CLEANER = nh3.Cleaner(
    tags=ALLOWED_TAGS,
    clean_content_tags={"script", "style"},
    attributes=ALLOWED_ATTRIBUTES,
    allowed_classes=ALLOWED_CLASSES,
    url_schemes=set(SAFE_URL_SCHEMES),
    url_relative="deny",
    link_rel="nofollow noopener noreferrer",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
)


class ConversationMarkdown(MarkdownIt):
    """CommonMark with tables, strikethrough and linkify, raw HTML off, links to safe schemes only."""

    def __init__(self) -> None:
        super().__init__("commonmark", {"html": False, "linkify": True, "breaks": True, "typographer": False})
        self.enable(["table", "strikethrough", "linkify"])
        assert self.linkify is not None, "linkify-it-py is a dependency (pyproject.toml)"
        self.linkify.set({"fuzzy_link": False})  # `report.py` or `main.py` are not links
        self.core.ruler.push("studio_adjust", adjust_tokens)
        self.add_render_rule("image", render_image)
        self.add_render_rule("table_open", render_table_open)
        self.add_render_rule("table_close", render_table_close)

    def validateLink(self, url: str) -> bool:  # noqa: N802  (markdown-it's name)
        """Called with every link and image URL, normalised (entities and %-escapes decoded first)."""
        scheme, colon, _ = url.strip().partition(":")
        return bool(colon) and scheme.lower() in SAFE_URL_SCHEMES


def adjust_tokens(state: StateCore) -> None:
    """Headings moved below the page's own; table cell alignment as a class (the CSP forbids `style`)."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1]) + HEADING_SHIFT, 6)}"
        elif token.type in ("th_open", "td_open") and token.attrs.get("style"):
            align = str(token.attrs.pop("style")).removeprefix("text-align:")
            if align in ALIGN_CLASSES:
                token.attrSet("class", ALIGN_CLASSES[align])


def render_image(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
    """An image as its alt text, linked to its URL (see the module docstring for why nothing is loaded)."""
    token = tokens[idx]
    label = escapeHtml(self.renderInlineAsText(token.children or [], options, env) or "image")
    src = token.attrGet("src")
    if src and not _inside_link(tokens, idx):
        return f'<a class="md-image" href="{escapeHtml(str(src))}">{label}</a>'
    return f'<span class="md-image">{label}</span>'


def _inside_link(tokens: Sequence[Token], idx: int) -> bool:
    depth = 0
    for token in tokens[:idx]:
        depth += {"link_open": 1, "link_close": -1}.get(token.type, 0)
    return depth > 0


def render_table_open(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
    """A table in a box of its own that scrolls sideways on a narrow screen, so the page does not."""
    return '<div class="md-table">' + self.renderToken(tokens, idx, options, env)


def render_table_close(self: Any, tokens: Sequence[Token], idx: int, options: OptionsDict, env: Any) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>"


_local = threading.local()


def _parser() -> ConversationMarkdown:
    """One parser per thread: linkify-it keeps the state of its last match on the instance."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = ConversationMarkdown()
    return parser


def clean_text(text: str) -> str:
    """Text every later step can encode: lone surrogates (from JSON `\\ud800` escapes) and NUL become U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\x00", "\ufffd")


def _html(markdown: str) -> str:
    return CLEANER.clean(_parser().render(markdown)) if markdown.strip() else ""


# A saved message does not change, and an operator comes back to a session (steps through it, reloads it):
# the HTML of recent short texts is kept, keyed by the text itself (at most CACHED_TEXTS × CACHED_MAX_CHARS
# characters of text, plus their HTML).
_cached_html = functools.lru_cache(maxsize=CACHED_TEXTS)(_html)


@dataclass
class MarkdownBudget:
    """The characters one page may parse as Markdown, shared by its messages in the order they render."""

    total: int
    used: int = 0

    def take(self, wanted: int) -> int:
        granted = max(0, min(wanted, self.total - self.used))
        self.used += granted
        return granted


def render_markdown(text: str | None, budget: MarkdownBudget | None = None) -> SafeString:
    """Markdown text to safe HTML (see the module docstring for what is understood and why it is safe).
    At most `MAX_MARKDOWN_CHARS` (and what is left of `budget`) is parsed; the rest is shown as text."""
    text = clean_text(text or "")
    parsed = min(len(text), MAX_MARKDOWN_CHARS)
    if budget is not None:
        parsed = budget.take(parsed)
    head, rest = text[:parsed], text[parsed:]
    html = _cached_html(head) if len(head) <= CACHED_MAX_CHARS else _html(head)
    if rest:
        page = f" and {budget.total:,} of a page" if budget is not None else ""
        html += (
            f'<p class="md-cut">{"The rest of this message" if parsed else "This message"} is shown as plain text: '
            f"Markdown is rendered for at most {MAX_MARKDOWN_CHARS:,} characters of a message{page}.</p>"
            f'<pre class="md-rest">{escape(rest)}</pre>'
        )
    return mark_safe(html)  # noqa: S308  (sanitised by nh3, or escaped)
