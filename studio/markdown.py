"""A tiny, safe Markdown renderer for conversation text in Studio.

Safety comes from the order of work: every piece of the input is HTML-escaped *before* any markup is
added, and the only markup added is a fixed set of tags (`p`, `br`, `strong`, `em`, `code`, `pre`,
`ul`/`ol`/`li`, `blockquote`, `h4`-`h6`, and `a` with an http(s) URL). Raw HTML in a message is shown as
text, never interpreted. Anything the renderer does not understand is left as (escaped) text.

Supported: paragraphs and line breaks, `#` headings, `-`/`*`/`+` and `1.` lists (flat), `>` quotes,
fenced code blocks, inline code, **bold** / __bold__, *italic* / _italic_, [links](https://...) and bare
http(s) URLs.
"""

from __future__ import annotations

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

FENCE_RE = re.compile(r"^\s*(```|~~~)")
HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
BULLET_RE = re.compile(r"^\s*[-*+]\s+(.*)$")
ORDERED_RE = re.compile(r"^\s*\d{1,9}[.)]\s+(.*)$")
QUOTE_RE = re.compile(r"^\s*>\s?(.*)$")
# Inline tokens found in the raw text; the text between them is escaped, then bold/italic applied.
INLINE_RE = re.compile(
    r"(?P<code>(`+)(?P<code_text>.+?)(?<!`)\2(?!`))"
    r"|(?P<link>\[(?P<link_text>[^\]\n]+)\]\((?P<link_url>[^()\s]+)\))"
    r"|(?P<url>https?://[^\s<>()\[\]\"']*[^\s<>()\[\]\"'.,;:!?])"
)
SAFE_URL_RE = re.compile(r"^https?://[^\s<>\"'`]+$", re.IGNORECASE)
BOLD_RE = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
ITALIC_RE = re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])|(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])")


def _emphasis(escaped: str) -> str:
    """Bold and italic on already-escaped text (the markers survive escaping; no `<` can be in it)."""
    escaped = BOLD_RE.sub(lambda m: f"<strong>{m.group(1) or m.group(2)}</strong>", escaped)
    return ITALIC_RE.sub(lambda m: f"<em>{m.group(1) or m.group(2)}</em>", escaped)


def _link(url: str, label_html: str) -> str:
    return f'<a href="{escape(url)}" rel="nofollow noopener noreferrer" target="_blank">{label_html}</a>'


def render_inline(text: str) -> str:
    """One line (or a paragraph's joined lines) of raw text to safe HTML."""
    out: list[str] = []
    position = 0
    for match in INLINE_RE.finditer(text):
        out.append(_emphasis(escape(text[position : match.start()])))
        if match.group("code"):
            out.append(f"<code>{escape(match.group('code_text').strip())}</code>")
        elif match.group("link"):
            url = match.group("link_url")
            label = _emphasis(escape(match.group("link_text")))
            if SAFE_URL_RE.match(url):
                out.append(_link(url, label))
            else:  # javascript:, data:, relative...: shown as the text it is
                out.append(escape(match.group(0)))
        else:
            url = match.group("url")
            out.append(_link(url, escape(url)))
        position = match.end()
    out.append(_emphasis(escape(text[position:])))
    return "".join(out)


def render_markdown(text: str | None) -> SafeString:
    """Markdown text to safe HTML (see the module docstring for what is understood)."""
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return mark_safe(BlockRenderer().render(lines))  # noqa: S308  (every piece is escaped by the renderer)


class BlockRenderer:
    """Reads lines one at a time, keeping the open paragraph, list or quote until a line ends it."""

    def __init__(self) -> None:
        self.html: list[str] = []
        self.paragraph: list[str] = []
        self.list_kind: str | None = None
        self.items: list[list[str]] = []
        self.quote: list[str] = []

    def render(self, lines: list[str]) -> str:
        index = 0
        while index < len(lines):
            fence = FENCE_RE.match(lines[index])
            index = self.code_block(lines, index, fence.group(1)) if fence else self.line(lines[index], index)
        self.flush_all()
        return "".join(self.html)

    def code_block(self, lines: list[str], index: int, marker: str) -> int:
        """The fenced block opening at `index`; returns the index after its closing fence."""
        self.flush_all()
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(marker):
            end += 1
        self.html.append("<pre><code>" + escape("\n".join(lines[index + 1 : end])) + "</code></pre>")
        return end + 1  # past the closing fence (or the end of the text)

    def line(self, line: str, index: int) -> int:
        heading, quoted = HEADING_RE.match(line), QUOTE_RE.match(line)
        item = BULLET_RE.match(line) or ORDERED_RE.match(line)
        if not line.strip():
            self.flush_all()
        elif heading:
            self.flush_all()
            level = min(len(heading.group(1)) + 3, 6)
            self.html.append(f"<h{level}>{render_inline(heading.group(2))}</h{level}>")
        elif item:
            self.list_item("ul" if BULLET_RE.match(line) else "ol", item.group(1))
        elif quoted:
            self.flush_paragraph()
            self.flush_list()
            self.quote.append(quoted.group(1))
        elif self.list_kind and line.startswith((" ", "\t")):
            self.items[-1].append(line.strip())  # a continuation line of the last item
        else:
            self.flush_list()
            self.flush_quote()
            self.paragraph.append(line.strip())
        return index + 1

    def list_item(self, kind: str, text: str) -> None:
        self.flush_paragraph()
        self.flush_quote()
        if self.list_kind != kind:
            self.flush_list()
            self.list_kind = kind
        self.items.append([text])

    def flush_paragraph(self) -> None:
        if self.paragraph:
            self.html.append("<p>" + "<br>".join(render_inline(line) for line in self.paragraph) + "</p>")
            self.paragraph.clear()

    def flush_list(self) -> None:
        if self.list_kind:
            body = "".join("<li>" + "<br>".join(render_inline(part) for part in item) + "</li>" for item in self.items)
            self.html.append(f"<{self.list_kind}>{body}</{self.list_kind}>")
            self.items.clear()
            self.list_kind = None

    def flush_quote(self) -> None:
        if self.quote:
            self.html.append("<blockquote>" + "<br>".join(render_inline(line) for line in self.quote) + "</blockquote>")
            self.quote.clear()

    def flush_all(self) -> None:
        self.flush_paragraph()
        self.flush_list()
        self.flush_quote()
