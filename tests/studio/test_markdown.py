"""Conversation text rendered by markdown-it-py and sanitised by nh3 (studio.markdown).

The HTML is read back with Python's HTML parser and compared as a tree (tag, attributes, children; text
with its whitespace collapsed), so the tests hold the structure and not the renderer's line breaks. Every
XSS case also goes through `assert_safe`: no script, no event attribute, no style, no src, only
http/https/mailto links.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio import markdown
from studio.markdown import MAX_MARKDOWN_CHARS, MarkdownBudget, render_markdown

VOID = {"br", "hr", "img", "input", "meta", "link"}
Node = tuple[str, dict[str, str | None], list] | str


class TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root: list[Node] = []
        self.stack: list[list[Node]] = [self.root]
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node: Node = (tag, dict(attrs), [])
        self.tags.append((tag, dict(attrs)))
        self.stack[-1].append(node)
        if tag not in VOID:
            self.stack.append(node[2])

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.stack[-1].append((tag, dict(attrs), []))

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        text = " ".join(data.split())
        if text:
            self.stack[-1].append(text)


def parsed(html: str) -> TreeBuilder:
    builder = TreeBuilder()
    builder.feed(html)
    builder.close()
    assert builder.stack == [builder.root], f"unbalanced HTML: {html!r}"
    return builder


def tree(text: str | None) -> list[Node]:
    return parsed(render_markdown(text)).root


def text_of(nodes: list[Node]) -> str:
    return " ".join(node if isinstance(node, str) else text_of(node[2]) for node in nodes)


LINK_ATTRS = {"rel": "nofollow noopener noreferrer", "target": "_blank"}


def link(href: str, *children: Node, **extra: str) -> Node:
    return ("a", {"href": href, **extra, **LINK_ATTRS}, list(children))


def assert_safe(html: str) -> None:
    """What no rendering may ever contain."""
    assert "<script" not in html.lower()
    for tag, attrs in parsed(html).tags:
        assert tag not in {"script", "style", "img", "svg", "iframe", "object", "embed", "math", "form"}, tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert name not in {"style", "src", "srcset", "formaction", "xlink:href"}, (tag, name)
            if name == "href":
                assert re.match(r"(https?://|mailto:)", value or "", re.IGNORECASE), value


# --- what is rendered ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("plain", [("p", {}, ["plain"])]),
        (
            "**bold** and *it* and __b__ _i_",
            [
                (
                    "p",
                    {},
                    [
                        ("strong", {}, ["bold"]),
                        "and",
                        ("em", {}, ["it"]),
                        "and",
                        ("strong", {}, ["b"]),
                        ("em", {}, ["i"]),
                    ],
                )
            ],
        ),
        ("`<b>` code", [("p", {}, [("code", {}, ["<b>"]), "code"])]),
        ("a\nb\n\nc", [("p", {}, ["a", ("br", {}, []), "b"]), ("p", {}, ["c"])]),
        ("# Title\n## Sub\n#### Deep", [("h4", {}, ["Title"]), ("h5", {}, ["Sub"]), ("h6", {}, ["Deep"])]),
        ("> quoted <b>", [("blockquote", {}, [("p", {}, ["quoted <b>"])])]),
        ("```python\n<i>x</i>\n**no**\n```", [("pre", {}, [("code", {}, ["<i>x</i> **no**"])])]),
        ("    indented code", [("pre", {}, [("code", {}, ["indented code"])])]),
        ("2 * 3 * 4 and snake_case_name", [("p", {}, ["2 * 3 * 4 and snake_case_name"])]),
        ("~~gone~~ kept", [("p", {}, [("s", {}, ["gone"]), "kept"])]),
        ("one\n\n---\n\ntwo", [("p", {}, ["one"]), ("hr", {}, []), ("p", {}, ["two"])]),
    ],
)
def test_commonmark(text, expected):
    assert tree(text) == expected


def test_tables_with_alignment_and_inline_markup():
    text = "| Merchant | Amount | Note |\n|:--|--:|:-:|\n| *FreshMart* | **$412.37** | `weekly` |\n| Cafe | $8 | |"
    assert tree(text) == [
        (
            "div",
            {"class": "md-table"},
            [
                (
                    "table",
                    {},
                    [
                        (
                            "thead",
                            {},
                            [
                                (
                                    "tr",
                                    {},
                                    [
                                        ("th", {"class": "align-left"}, ["Merchant"]),
                                        ("th", {"class": "align-right"}, ["Amount"]),
                                        ("th", {"class": "align-center"}, ["Note"]),
                                    ],
                                )
                            ],
                        ),
                        (
                            "tbody",
                            {},
                            [
                                (
                                    "tr",
                                    {},
                                    [
                                        ("td", {"class": "align-left"}, [("em", {}, ["FreshMart"])]),
                                        ("td", {"class": "align-right"}, [("strong", {}, ["$412.37"])]),
                                        ("td", {"class": "align-center"}, [("code", {}, ["weekly"])]),
                                    ],
                                ),
                                (
                                    "tr",
                                    {},
                                    [
                                        ("td", {"class": "align-left"}, ["Cafe"]),
                                        ("td", {"class": "align-right"}, ["$8"]),
                                        ("td", {"class": "align-center"}, []),
                                    ],
                                ),
                            ],
                        ),
                    ],
                )
            ],
        )
    ]


def test_nested_lists():
    text = "- Food\n  - Groceries\n    - FreshMart\n  - Dining\n- Bills\n  1. Rent\n  2. Power\n\n3. three\n4. four"
    assert tree(text) == [
        (
            "ul",
            {},
            [
                (
                    "li",
                    {},
                    [
                        "Food",
                        (
                            "ul",
                            {},
                            [
                                ("li", {}, ["Groceries", ("ul", {}, [("li", {}, ["FreshMart"])])]),
                                ("li", {}, ["Dining"]),
                            ],
                        ),
                    ],
                ),
                ("li", {}, ["Bills", ("ol", {}, [("li", {}, ["Rent"]), ("li", {}, ["Power"])])]),
            ],
        ),
        ("ol", {"start": "3"}, [("li", {}, ["three"]), ("li", {}, ["four"])]),
    ]


def test_links():
    assert tree('see [the **report**](https://example.com/a?b=1&c=2 "Report") or http://x.org/p.') == [
        (
            "p",
            {},
            [
                "see",
                link("https://example.com/a?b=1&c=2", "the", ("strong", {}, ["report"]), title="Report"),
                "or",
                link("http://x.org/p", "http://x.org/p"),
                ".",
            ],
        )
    ]
    assert tree("<https://ok.example> and ops@example.com") == [
        (
            "p",
            {},
            [
                link("https://ok.example", "https://ok.example"),
                "and",
                link("mailto:ops@example.com", "ops@example.com"),
            ],
        )
    ]
    assert tree("[ref][r]\n\n[r]: https://example.com/ref") == [("p", {}, [link("https://example.com/ref", "ref")])]


def test_file_names_are_not_links():
    assert tree("edit main.py and report.py on www.example.com") == [
        ("p", {}, ["edit main.py and report.py on www.example.com"])
    ]


def test_images_are_never_loaded_but_their_alt_text_and_link_stay():
    assert tree("![chart of *May*](https://cdn.example.com/c.png)") == [
        ("p", {}, [link("https://cdn.example.com/c.png", "chart of May", **{"class": "md-image"})])
    ]
    assert tree("[![logo](https://cdn.example.com/l.png)](https://example.com)") == [
        ("p", {}, [link("https://example.com", ("span", {"class": "md-image"}, ["logo"]))])
    ], "no link inside a link"
    assert tree("![](https://cdn.example.com/x.png)")[0][2][0][2] == ["image"], "no alt text"
    for text in ("![x](data:image/png;base64,iVBORw0KGgo=)", "![x](javascript:alert(1))", "![x](/local.png)"):
        html = render_markdown(text)
        assert_safe(html)
        assert tree(text) == [("p", {}, [text])], "left as the text it is"


def test_markdown_of_nothing():
    assert render_markdown("") == "" and render_markdown(None) == "" and render_markdown(" \n ") == ""


# --- XSS ------------------------------------------------------------------------------------------------------

BAD_URLS = [
    "javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    " javascript:alert(1)",
    "jAvAsCrIpT:alert(document.cookie)",
    "&#106;avascript:alert(1)",
    "&#x6A;avascript:alert(1)",
    "&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)",
    "java&#x09;script:alert(1)",
    "java&#10;script:alert(1)",
    "%6Aavascript:alert(1)",
    "javascript&colon;alert(1)",
    "javascript://%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:image/svg+xml,<svg onload=alert(1)>",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "file:///etc/passwd",
    "/studio/relative",
    "//evil.example/x",
]


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize(
    "form",
    [
        "[click]({url})",
        "[click](<{url}>)",
        '[click]({url} "title")',
        "[click][ref]\n\n[ref]: {url}",
        "[ref]\n\n[ref]: <{url}>",
        "<{url}>",
        "visit {url} now",
        "![img]({url})",
        "| col |\n|---|\n| [x]({url}) |",
        "- item [x]({url})\n  - nested <{url}>",
    ],
)
def test_dangerous_urls_never_become_links(form, url):
    html = render_markdown(form.format(url=url))
    assert_safe(html)


@pytest.mark.parametrize(
    "text, shown",
    [
        ("<script>alert('x')</script>", "<script>alert('x')</script>"),
        ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
        ("<svg onload=alert(1)>", "<svg onload=alert(1)>"),
        ('<a href="javascript:alert(1)">x</a>', '<a href="javascript:alert(1)">x</a>'),
        ('<p style="position:fixed;inset:0">cover</p>', '<p style="position:fixed;inset:0">cover</p>'),
        ('<div onmouseover="alert(1)">hover</div>', '<div onmouseover="alert(1)">hover</div>'),
        ("<iframe src=//evil.example></iframe>", "<iframe src=//evil.example></iframe>"),
        ("<!-- <script>alert(1)</script> -->", "<!-- <script>alert(1)</script> -->"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", "<script>alert(1)</script>"),
        ("&#60;img src=x onerror=alert(1)&#62;", "<img src=x onerror=alert(1)>"),
        ("`<script>alert(1)</script>`", "<script>alert(1)</script>"),
        ("**<script>alert(1)</script>**", "<script>alert(1)</script>"),
        ("[<img src=x onerror=alert(1)>](https://example.com)", "<img src=x onerror=alert(1)>"),
    ],
)
def test_raw_html_is_text(text, shown):
    html = render_markdown(text)
    assert_safe(html)
    assert shown in text_of(parsed(html).root), "shown as the text it is"


@pytest.mark.parametrize(
    "cell",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<svg/onload=alert(1)>",
        '<td style="color:red" onclick="alert(1)">',
    ],
)
def test_raw_html_inside_tables_is_text(cell):
    html = render_markdown(f"| a | b |\n|---|---|\n| {cell} | ok |")
    assert_safe(html)
    cells = [node for node in parsed(html).tags if node[0] == "td"]
    assert cells == [("td", {}), ("td", {})]
    assert cell in text_of(parsed(html).root)


def test_html_a_link_title_cannot_break_out():
    html = render_markdown('[x](https://example.com "a\\" onmouseover=\\"alert(1)")')
    assert_safe(html)
    assert [tag for tag, _ in parsed(html).tags] == ["p", "a"]
    assert parsed(html).tags[1][1]["title"] == 'a" onmouseover="alert(1)', "one attribute holding the quotes"


@pytest.mark.parametrize(
    "text",
    [
        "[" * 20_000,
        "](" * 20_000,
        "![" * 10_000,
        "*a **b " * 5_000,
        "_" * 30_000 + "a",
        "`" * 30_000,
        "<" * 30_000,
        "&#x" * 10_000,
        "[a]" * 10_000,
        "((((" * 5_000,
        '"' * 30_000,
        "> " * 5_000 + "deep",
        "".join("  " * depth + "- x\n" for depth in range(300)),
    ],
    ids=lambda text: repr(text[:8]),
)
def test_pathological_input_renders_bounded(text):
    html = render_markdown(text)
    assert_safe(html)
    builder = parsed(html)
    depth = max_depth(builder.root)
    assert depth <= 25, "markdown-it's nesting limit (20) holds"


def max_depth(nodes: list[Node]) -> int:
    return max((1 + max_depth(node[2]) for node in nodes if not isinstance(node, str)), default=0)


@pytest.fixture
def parsed_texts(monkeypatch) -> list[str]:
    """The texts markdown-it parses from here on (the cache of recent texts emptied first)."""
    seen: list[str] = []
    original = markdown.ConversationMarkdown.render

    def spy(self, src, env=None):
        seen.append(src)
        return original(self, src, env)

    monkeypatch.setattr(markdown.ConversationMarkdown, "render", spy)
    markdown._cached_html.cache_clear()
    return seen


def test_only_the_first_max_chars_are_parsed(parsed_texts):
    seen = parsed_texts
    bomb = "[" * (MAX_MARKDOWN_CHARS * 3)
    html = render_markdown(bomb)
    assert [len(text) for text in seen] == [MAX_MARKDOWN_CHARS], "the parser never sees more than the cap"
    rest = parsed(html).root[-1]
    assert rest[0] == "pre" and rest[1] == {"class": "md-rest"}
    assert rest[2] == ["[" * (MAX_MARKDOWN_CHARS * 2)], "the rest is shown whole, as text"
    assert (
        f"The rest of this message is shown as plain text: Markdown is rendered for at most {MAX_MARKDOWN_CHARS:,}"
        in html
    )
    seen.clear()
    assert "md-rest" not in render_markdown("x" * MAX_MARKDOWN_CHARS) and [len(text) for text in seen] == [
        MAX_MARKDOWN_CHARS
    ]


def test_the_rest_after_the_cap_is_escaped(monkeypatch):
    monkeypatch.setattr(markdown, "MAX_MARKDOWN_CHARS", 10)
    html = render_markdown("**ten ch** <script>alert(1)</script> [x](javascript:alert(1))")
    assert_safe(html)
    root = parsed(html).root
    assert root[0] == ("p", {}, [("strong", {}, ["ten ch"])])
    assert root[-1][2] == ["<script>alert(1)</script> [x](javascript:alert(1))"]


def test_a_page_budget_is_shared_by_its_messages_in_order(parsed_texts):
    seen = parsed_texts
    budget = MarkdownBudget(total=25)
    first = render_markdown("**first** message", budget)
    second = render_markdown("*second* one, cut here", budget)
    third = render_markdown("**third**", budget)
    assert seen == ["**first** message", "*second*"], "17 + 8 characters: the budget of 25"
    assert parsed(first).root == [("p", {}, [("strong", {}, ["first"]), "message"])]
    assert parsed(second).root[0] == ("p", {}, [("em", {}, ["second"])])
    assert parsed(second).root[-1] == ("pre", {"class": "md-rest"}, ["one, cut here"])
    assert "and 25 of a page" in second
    assert parsed(third).root[0] == ("p", {"class": "md-cut"}, [text_of(parsed(third).root[0][2])])
    assert "This message is shown as plain text" in third and parsed(third).root[-1][2] == ["**third**"]
    assert budget.used == 25


def test_recent_short_texts_are_parsed_once(parsed_texts):
    first = render_markdown("| a |\n|---|\n| **cached** |")
    assert render_markdown("| a |\n|---|\n| **cached** |") == first
    long = "word " * (markdown.CACHED_MAX_CHARS // 5 + 1)
    render_markdown(long)
    render_markdown(long)
    assert parsed_texts == ["| a |\n|---|\n| **cached** |", long, long], "long texts are not kept"


def test_very_long_lines():
    line = "word" * 4_000 + " https://example.com/" + "a" * 2_000  # one line of 18k characters, under the cap
    [(tag, _, children)] = tree(line)
    assert tag == "p" and children[0] == "word" * 4_000
    assert children[1][1]["href"] == "https://example.com/" + "a" * 2_000


@pytest.mark.parametrize(
    "text", ["a\x00b", "\x00<script>", "lone \ud800 high", "lone \udfff low", "pair \ud83d\ude00 ok"]
)
def test_nul_bytes_and_lone_surrogates(text):
    html = render_markdown(text)
    assert_safe(html)
    assert "\x00" not in html
    html.encode("utf-8")  # no surrogate left to fail the response
    if "\ud83d" in text:
        assert "\U0001f600" in html, "a surrogate pair is the character it encodes"
    else:
        assert "\ufffd" in html


FRAGMENTS = st.sampled_from(
    [
        "<script>",
        "</script>",
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)>",
        " onload=",
        "javascript:",
        "JaVaScRiPt:",
        "&#106;",
        "&#x6A;",
        "&colon;",
        "data:",
        "vbscript:",
        "alert(1)",
        "[",
        "]",
        "(",
        ")",
        "<",
        ">",
        '"',
        "'",
        "`",
        "*",
        "_",
        "~~",
        "|",
        "|---|",
        "\n",
        "\n\n",
        "- ",
        "  ",
        "> ",
        "1. ",
        "# ",
        "![",
        "http://",
        "https://x.example/",
        "mailto:",
        "\\",
        "&",
        "\x00",
        "\ud800",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS | st.text(max_size=8), max_size=40).map("".join))
def test_random_text_never_renders_a_script_an_event_or_a_bad_link(text):
    assert_safe(render_markdown(text))
