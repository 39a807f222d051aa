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
        out.append(_emphasis(escape(text[position:match.start()])))
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
    html: list[str] = []
    paragraph: list[str] = []
    list_kind: str | None = None
    items: list[list[str]] = []
    quote: list[str] = []

    def flush_paragraph() -> None:
        if paragraph:
            html.append("<p>" + "<br>".join(render_inline(line) for line in paragraph) + "</p>")
            paragraph.clear()

    def flush_list() -> None:
        nonlocal list_kind
        if list_kind:
            body = "".join("<li>" + "<br>".join(render_inline(part) for part in item) + "</li>" for item in items)
            html.append(f"<{list_kind}>{body}</{list_kind}>")
            items.clear()
            list_kind = None

    def flush_quote() -> None:
        if quote:
            html.append("<blockquote>" + "<br>".join(render_inline(line) for line in quote) + "</blockquote>")
            quote.clear()

    def flush_all() -> None:
        flush_paragraph()
        flush_list()
        flush_quote()

    index = 0
    while index < len(lines):
        line = lines[index]
        fence = FENCE_RE.match(line)
        if fence:
            flush_all()
            marker = fence.group(1)
            code: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].strip().startswith(marker):
                code.append(lines[index])
                index += 1
            index += 1  # the closing fence (or the end of the text)
            html.append("<pre><code>" + escape("\n".join(code)) + "</code></pre>")
            continue
        if not line.strip():
            flush_all()
            index += 1
            continue
        heading = HEADING_RE.match(line)
        bullet = BULLET_RE.match(line)
        ordered = ORDERED_RE.match(line)
        quoted = QUOTE_RE.match(line)
        if heading:
            flush_all()
            level = min(len(heading.group(1)) + 3, 6)
            html.append(f"<h{level}>{render_inline(heading.group(2))}</h{level}>")
        elif bullet or ordered:
            kind = "ul" if bullet else "ol"
            flush_paragraph()
            flush_quote()
            if list_kind != kind:
                flush_list()
                list_kind = kind
            items.append([(bullet or ordered).group(1)])
        elif quoted:
            flush_paragraph()
            flush_list()
            quote.append(quoted.group(1))
        elif list_kind and line.startswith((" ", "\t")):
            items[-1].append(line.strip())  # a continuation line of the last item
        else:
            flush_list()
            flush_quote()
            paragraph.append(line.strip())
        index += 1
    flush_all()
    return mark_safe("".join(html))  # noqa: S308  (every piece was escaped above)
