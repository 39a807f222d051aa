"""The sessions list: scope chips with counts, filters by scope, date range, model and status, keyset
pagination, and how scope ids and costs are shown."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from agents.models import Session
from tests.studio.conftest import attrs, q
from tests.studio.factories import Call, Turn

LONG_SCOPE = "tenant:acme-corporation:workspace:8f14e45f-ceea-467f-a0e6-1234567890ab"
URL = "/studio/sessions/"


def listed_ids(content: str) -> list[str]:
    return attrs(content, "tr", "data-session")


def listed_scopes(content: str) -> list[str]:
    return attrs(content, "tr", "data-scope")


def total(content: str) -> int:
    return int(re.search(r'data-total="(\d+)"', content).group(1))


def chips(content: str) -> dict[str, tuple[int, str]]:
    """scope id -> (count, href) of every scope chip."""
    found = {}
    for match in re.finditer(
        r'<a class="chip[^"]*"\s+href="([^"]*)"[^>]*?data-scope="([^"]*)" data-count="(\d+)"', content, re.S
    ):
        href = html.unescape(match.group(1))
        found[html.unescape(match.group(2))] = (int(match.group(3)), URL + href if href.startswith("?") else href)
    return found


@pytest.fixture
def population(make_session):
    """tenant-a: 5 sessions, global: 3, a long scope: 2, tenant-z: 1 (unpriced, 10 days ago)."""
    now = timezone.now()
    for index in range(5):
        make_session(scope="tenant-a", title=f"A{index}", at=now - timedelta(hours=index + 1))
    for index in range(3):
        make_session(scope="", title=f"G{index}", model="claude-haiku-4-5", at=now - timedelta(hours=2, minutes=index))
    for index in range(2):
        make_session(scope=LONG_SCOPE, title=f"L{index}", status="interrupted", at=now - timedelta(days=2, hours=index))
    make_session(
        scope="tenant-z",
        title="Z0",
        model="local",
        provider="local",
        at=now - timedelta(days=10),
        turns=[Turn("hi", [Call(cost_micros=None)])],
    )


def test_chips_show_the_most_active_scopes_with_their_session_counts(staff_client, population):
    content = staff_client.get(URL).content.decode()
    found = chips(content)
    assert {scope: count for scope, (count, _) in found.items()} == {"tenant-a": 5, "": 3, LONG_SCOPE: 2, "tenant-z": 1}
    assert list(found)[:2] == ["tenant-a", ""], "most active first"
    assert total(content) == 11


@pytest.mark.parametrize("scope", ["tenant-a", "", LONG_SCOPE])
def test_clicking_a_chip_lists_only_that_scope_and_the_count_matches_the_chip(staff_client, population, scope):
    count, href = chips(staff_client.get(URL).content.decode())[scope]
    content = staff_client.get(href).content.decode()
    assert set(listed_scopes(content)) == {scope}
    assert len(listed_ids(content)) == count == total(content)
    assert chips(content)[scope][0] == count


def test_the_global_scope_is_shown_as_global_and_long_ids_are_shortened(staff_client, population):
    content = staff_client.get(URL).content.decode()
    assert re.search(r'data-scope="" data-count="3"[^>]*>\s*<span class="chip-name">global</span>', content)
    assert f'title="{LONG_SCOPE}"' in content, "full id in the title"
    assert f'<span class="chip-name">{LONG_SCOPE}</span>' not in content
    assert '<span class="chip-name">tenant:acme-co…567890ab</span>' in content


def test_the_scope_search_finds_any_scope(staff_client, population):
    content = staff_client.get(URL + "?find=zzz").content.decode()
    assert chips(content) == {}
    content = staff_client.get(URL + "?find=tenant-z").content.decode()
    assert {scope: count for scope, (count, _) in chips(content).items()} == {"tenant-z": 1}
    content = staff_client.get(URL + "?find=acme").content.decode()
    assert list(chips(content)) == [LONG_SCOPE]


def test_a_selected_scope_outside_the_top_chips_still_gets_its_chip(staff_client, population):
    content = staff_client.get(URL + "?find=tenant-a&scope=tenant-z").content.decode()
    found = chips(content)
    assert found["tenant-z"][0] == 1 == total(content)


def test_filter_by_model_status_and_date_range(staff_client, population):
    content = staff_client.get(URL + "?model=claude-haiku-4-5").content.decode()
    assert set(listed_scopes(content)) == {""} and total(content) == 3
    content = staff_client.get(URL + "?status=interrupted").content.decode()
    assert set(listed_scopes(content)) == {LONG_SCOPE} and total(content) == 2
    content = staff_client.get(URL + "?range=7d").content.decode()
    assert "tenant-z" not in listed_scopes(content) and total(content) == 10
    content = staff_client.get(URL + "?range=today").content.decode()
    assert LONG_SCOPE not in listed_scopes(content)
    today = timezone.localdate()
    old = today - timedelta(days=10)
    content = staff_client.get(URL + f"?from={old.isoformat()}&to={old.isoformat()}").content.decode()
    assert listed_scopes(content) == ["tenant-z"]
    # Chip counts follow the other filters.
    content = staff_client.get(URL + "?model=claude-sonnet-4-5").content.decode()
    assert {scope: count for scope, (count, _) in chips(content).items()} == {"tenant-a": 5, LONG_SCOPE: 2}
    # The model filter's options are the models sessions used.
    content = staff_client.get(URL).content.decode()
    assert set(attrs(content, "option", "value")) >= {"claude-haiku-4-5", "claude-sonnet-4-5", "local"}


def test_filters_keep_each_other(staff_client, population):
    content = staff_client.get(URL + "?scope=&range=7d").content.decode()
    assert '<input type="hidden" name="scope" value="">' in content, "the global scope survives a model filter"
    assert '<input type="hidden" name="range" value="7d">' in content


def test_costs_are_shown_formatted_and_unpriced_never_as_zero(staff_client, population):
    content = staff_client.get(URL + "?scope=tenant-z").content.decode()
    row = content[content.index('data-scope="tenant-z"', content.index("<tbody>")) :]
    row = row[: row.index("</tr>")]
    assert "unpriced" in row and "$0" not in row
    content = staff_client.get(URL + "?scope=tenant-a").content.decode()
    assert "$0.0006" in content  # 600 micro-dollars


def walk(client, url: str, link: str) -> list[list[str]]:
    pages = []
    while url:
        content = client.get(url).content.decode()
        pages.append(listed_ids(content))
        match = re.search(rf'<a rel="{link}" href="([^"]*)"', content)
        url = URL + html.unescape(match.group(1)) if match else None
        assert len(pages) < 50
    return pages


def test_keyset_pagination_has_no_duplicates_or_gaps_both_ways(staff_client, make_session):
    moment = timezone.now() - timedelta(hours=3)
    for index in range(23):  # some share the same updated_at: the id breaks ties
        make_session(scope=f"s{index % 4}", title=f"T{index}", at=moment - timedelta(minutes=index // 3))
    expected = [str(pk) for pk in Session.all_scopes.order_by("-updated_at", "-id").values_list("pk", flat=True)]
    forward = walk(staff_client, URL + "?per=5", "next")
    assert [len(page) for page in forward] == [5, 5, 5, 5, 3]
    assert [pk for page in forward for pk in page] == expected
    # Back from the last page through the "newer" links.
    last_url = URL + "?per=5"
    for _ in range(4):
        content = staff_client.get(last_url).content.decode()
        last_url = URL + html.unescape(re.search(r'<a rel="next" href="([^"]*)"', content).group(1))
    backward = walk(staff_client, last_url, "prev")
    assert backward == forward[::-1]


def test_pagination_keeps_the_filters(staff_client, make_session):
    for index in range(7):
        make_session(scope="paged", title=f"P{index}", at=timezone.now() - timedelta(minutes=10 * index))
    make_session(scope="other")
    pages = walk(staff_client, URL + "?per=3&scope=paged", "next")
    ids = [pk for page in pages for pk in page]
    assert len(ids) == len(set(ids)) == 7


def test_a_bad_cursor_shows_the_first_page(staff_client, population):
    response = staff_client.get(URL + "?after=not-a-cursor&before=%%%")
    assert response.status_code == 200
    assert len(listed_ids(response.content.decode())) == 11


def test_rows_link_to_the_replay(staff_client, make_session):
    session = make_session(scope="tenant-q", title="<b>Bold</b> title")
    content = staff_client.get(URL).content.decode()
    assert reverse("studio:replay", args=[session.pk]) in content
    assert "&lt;b&gt;Bold&lt;/b&gt; title" in content and "<b>Bold</b>" not in content


@pytest.mark.django_db
def test_empty_database(staff_client):
    content = staff_client.get(URL).content.decode()
    assert "No sessions match these filters." in content
    assert staff_client.get(URL + "?scope=" + q("nobody")).status_code == 200
