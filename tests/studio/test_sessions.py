"""The sessions list: scope chips with counts, filters (scope, date range, model, status, deploy, user, tags,
cost and latency ranges, full-text search), sorting by any column, numbered pages, invalid values shown as
errors, and how scope ids and costs are shown. The CSV export is in test_sessions_csv.py."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from agents.models import Session
from tests.studio.conftest import attrs, q
from tests.studio.factories import Call, Turn

LONG_SCOPE = "tenant:acme-corporation:workspace:8f14e45f-ceea-467f-a0e6-1234567890ab"
URL = "/studio/sessions/"
POSTGRES = connection.vendor == "postgresql"


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


def errors(content: str) -> dict[str, str]:
    """parameter -> the error's text, of the invalid-filters box."""
    box = content[content.index('id="filter-errors"') :]
    box = box[: box.index("</section>")]
    return {
        html.unescape(name): re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", text))).strip()
        for name, text in re.findall(r'<li data-param="([^"]*)">(.*?)</li>', box, re.S)
    }


def ids_of(queryset) -> list[str]:
    return [str(pk) for pk in queryset.values_list("pk", flat=True)]


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


# --- scope chips -----------------------------------------------------------------------------------------------


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
    assert total(content) == 11, "the scope search picks chips, it does not filter the list"
    content = staff_client.get(URL + "?find=glob").content.decode()
    assert {scope: count for scope, (count, _) in chips(content).items()} == {"": 3}


def test_a_selected_scope_outside_the_top_chips_still_gets_its_chip(staff_client, population):
    content = staff_client.get(URL + "?find=tenant-a&scope=tenant-z").content.decode()
    found = chips(content)
    assert found["tenant-z"][0] == 1 == total(content)
    content = staff_client.get(URL + "?scope=nobody").content.decode()
    assert chips(content)["nobody"][0] == 0 == total(content)


# --- filters -----------------------------------------------------------------------------------------------------


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
    # A model no session used lists nothing, and the form shows it chosen (not "any model").
    response = staff_client.get(URL + "?model=gpt-0")
    assert response.status_code == 200 and total(response.content.decode()) == 0
    assert '<option value="gpt-0" selected>' in response.content.decode()


def test_filter_by_user_tags_and_deploy(staff_client, make_session):
    alice = make_session(scope="t1", user_sub="alice", tags=["billing", "vip"])
    alice_2 = make_session(scope="t2", user_sub="alice", tags=["support"], deploy_id="deploy0002")
    bob = make_session(scope="t1", user_sub="bob", tags=["billing"])
    make_session(scope="t1", user_sub="alice-smith")  # exact match only
    make_session(scope="t1", user_sub="carol", tags=["other"])

    def shown(query: str) -> set[str]:
        return set(listed_ids(staff_client.get(URL + query).content.decode()))

    assert shown("?user=alice") == {str(alice.pk), str(alice_2.pk)}
    assert shown("?tag=billing") == {str(alice.pk), str(bob.pk)}
    assert shown("?tag=vip&tag=support") == shown("?tag=vip,%20support") == {str(alice.pk), str(alice_2.pk)}
    assert shown("?tag=billing&user=bob") == {str(bob.pk)}
    assert shown("?deploy=deploy0002") == {str(alice_2.pk)}
    assert shown("?tag=nothing") == set()
    content = staff_client.get(URL + "?tag=vip&tag=support").content.decode()
    assert 'name="tag" value="vip, support"' in content, "the form keeps the tags"


def test_status_filter_agrees_with_the_status_shown(staff_client, make_session):
    """A running session whose lease expired shows as interrupted (its process died): it is found by
    `status=interrupted`, not by `status=running`."""
    now = timezone.now()
    alive = make_session(scope="t", status="running", lock_expires_at=now + timedelta(minutes=5))
    dead = make_session(scope="t", status="running", lock_expires_at=now - timedelta(minutes=5))
    stopped = make_session(scope="t", status="interrupted")
    failed = make_session(scope="t", status="error")
    idle = make_session(scope="t")
    expected = {
        "running": [alive],
        "interrupted": [dead, stopped],
        "error": [failed],
        "idle": [idle],
    }
    for status, sessions in expected.items():
        content = staff_client.get(URL + f"?status={status}").content.decode()
        assert set(listed_ids(content)) == {str(s.pk) for s in sessions}, status
        assert set(attrs(content, "tr", "data-status")) == {status}, "rows show the status filtered on"


def test_cost_range_in_dollars(staff_client, make_session):
    cheap = make_session(scope="t", turns=[Turn("a", [Call(cost_micros=40_000)])])  # $0.04
    middle = make_session(scope="t", turns=[Turn("a", [Call(cost_micros=250_000)])])  # $0.25
    dear = make_session(scope="t", turns=[Turn("a", [Call(cost_micros=3_000_000)])])  # $3
    unpriced = make_session(scope="t", turns=[Turn("a", [Call(cost_micros=None)])])

    def shown(query: str) -> set[str]:
        return set(listed_ids(staff_client.get(URL + query).content.decode()))

    assert shown("?cost_min=0.25") == {str(middle.pk), str(dear.pk)}, "bounds are inclusive"
    assert shown("?cost_max=0.25") == {str(cheap.pk), str(middle.pk), str(unpriced.pk)}
    assert shown("?cost_min=%240.05&cost_max=2.999999") == {str(middle.pk)}, "a leading $ is fine"
    assert shown("?cost_min=3&cost_max=3") == {str(dear.pk)}


def test_latency_range_is_the_mean_per_model_call(staff_client, make_session):
    fast = make_session(scope="t", turns=[Turn("a", [Call(latency_ms=200), Call(latency_ms=400)])])  # mean 300
    slow = make_session(scope="t", turns=[Turn("a", [Call(latency_ms=900)]), Turn("b", [Call(latency_ms=1500)])])
    make_session(scope="t", turns=[Turn("a", [])])  # no model call: no mean, left out by any bound
    assert Session.all_scopes.get(pk=slow.pk).mean_latency_ms == 1200

    def shown(query: str) -> set[str]:
        return set(listed_ids(staff_client.get(URL + query).content.decode()))

    assert shown("?latency_min=300") == {str(fast.pk), str(slow.pk)}
    assert shown("?latency_min=301") == {str(slow.pk)}
    assert shown("?latency_max=300") == {str(fast.pk)}
    assert shown("?latency_min=1200&latency_max=1200") == {str(slow.pk)}


def test_filters_combine(staff_client, make_session):
    now = timezone.now()
    target = make_session(
        scope="t1",
        user_sub="u1",
        tags=["billing"],
        model="claude-haiku-4-5",
        turns=[Turn("where is my refund?", [Call(cost_micros=120_000, latency_ms=800)])],
        at=now - timedelta(hours=1),
    )
    for changes in (
        {"user_sub": "u2"},
        {"tags": ["other"]},
        {"model": "claude-sonnet-4-5"},
        {"turns": [Turn("where is my refund?", [Call(cost_micros=10_000, latency_ms=800)])]},
        {"turns": [Turn("where is my refund?", [Call(cost_micros=120_000, latency_ms=3000)])]},
        {"turns": [Turn("hello there", [Call(cost_micros=120_000, latency_ms=800)])]},
        {"at": now - timedelta(days=40)},
    ):
        fields = {
            "scope": "t1",
            "user_sub": "u1",
            "tags": ["billing"],
            "model": "claude-haiku-4-5",
            "turns": [Turn("where is my refund?", [Call(cost_micros=120_000, latency_ms=800)])],
            "at": now - timedelta(hours=1),
            **changes,
        }
        make_session(**fields)
    query = "?q=refund&user=u1&tag=billing&model=claude-haiku-4-5&cost_min=0.1&latency_max=1000&range=30d&scope=t1"
    content = staff_client.get(URL + query).content.decode()
    assert listed_ids(content) == [str(target.pk)] and total(content) == 1


def test_the_form_keeps_every_value_and_links_keep_the_other_filters(staff_client, population):
    query = "?scope=&range=7d&q=hello&user=u1&tag=a&cost_min=0.5&latency_max=900&sort=cost&per=25&status=idle"
    content = staff_client.get(URL + query).content.decode()
    for name, value in (
        ("q", "hello"),
        ("user", "u1"),
        ("tag", "a"),
        ("cost_min", "0.5"),
        ("latency_max", "900"),
    ):
        assert re.search(rf'name="{name}" value="{re.escape(value)}"', content), name
    assert re.search(r'<option value="idle" selected>', content)
    assert re.search(r'<option value="25" selected>', content)
    # Hidden inputs carry what the form does not show (the global scope is `scope=` present and empty).
    assert '<input type="hidden" name="scope" value="">' in content
    assert '<input type="hidden" name="range" value="7d">' in content
    assert '<input type="hidden" name="sort" value="cost">' in content
    # A sort link and a chip link keep every filter (and start again at page 1).
    sort_link = html.unescape(re.search(r'data-column="tokens">\s*<a class="sort-link" href="([^"]*)"', content)[1])
    assert "sort=-tokens" in sort_link and "q=hello" in sort_link and "cost_min=0.5" in sort_link
    assert "page=" not in sort_link


# --- full-text search ------------------------------------------------------------------------------------------


@pytest.fixture
def conversations(make_session):
    return {
        "refund": make_session(
            scope="s1",
            title="Card question",
            turns=[Turn("Hello"), Turn("Where is the refund for my train tickets?", [Call(text="It is on its way.")])],
        ),
        "invoice": make_session(
            scope="s2", title="Invoices", turns=[Turn("Please send the invoice", [Call(text="Sent to your inbox.")])]
        ),
        "titled": make_session(scope="s3", title="Quarterly tickets review", turns=[Turn("hi")]),
        "other": make_session(scope="s1", title="Nothing", turns=[Turn("What's the weather?")]),
    }


def test_search_finds_sessions_by_a_word_of_any_message_or_the_title(staff_client, conversations):
    content = staff_client.get(URL + "?q=refund").content.decode()
    assert listed_ids(content) == [str(conversations["refund"].pk)] and total(content) == 1
    content = staff_client.get(URL + "?q=inbox").content.decode()  # in an assistant message
    assert listed_ids(content) == [str(conversations["invoice"].pk)]
    content = staff_client.get(URL + "?q=tickets").content.decode()  # a message, and a title
    assert set(listed_ids(content)) == {str(conversations["refund"].pk), str(conversations["titled"].pk)}
    assert total(content) == 2
    assert 'matching <q class="search-echo">tickets</q>' in content
    content = staff_client.get(URL + "?q=TICKETS").content.decode()
    assert total(content) == 2, "case does not matter"
    assert total(staff_client.get(URL + "?q=zebra").content.decode()) == 0


@pytest.mark.skipif(not POSTGRES, reason="full-text search is PostgreSQL's")
def test_search_on_postgresql_stems_words_and_takes_phrases_or_and_minus(staff_client, conversations):
    def shown(query: str) -> set[str]:
        return set(listed_ids(staff_client.get(URL + "?q=" + q(query)).content.decode()))

    refund, invoice, titled = (str(conversations[k].pk) for k in ("refund", "invoice", "titled"))
    assert shown("refunds") == {refund}, "stemmed"
    assert shown("ticket") == {refund, titled}
    assert shown('"train tickets"') == {refund}
    assert shown('"tickets train"') == set()
    assert shown("refund or invoice") == {refund, invoice}
    assert shown("tickets -quarterly") == {refund}
    content = staff_client.get(URL + "?q=the").content.decode()
    assert "Common words such as <em>the</em> are not searched" in content


@pytest.mark.skipif(not POSTGRES, reason="full-text search is PostgreSQL's")
def test_a_search_of_only_common_words_is_an_error_on_postgresql(staff_client, conversations):
    response = staff_client.get(URL + "?q=" + q("the and of"))
    assert response.status_code == 400
    assert "no word to search for" in errors(response.content.decode())["q"]


@pytest.mark.skipif(POSTGRES, reason="the fallback of databases without full-text search")
def test_search_elsewhere_is_a_case_insensitive_substring_and_the_page_says_so(staff_client, conversations):
    content = staff_client.get(URL + "?q=" + q("TRAIN TICK")).content.decode()
    assert listed_ids(content) == [str(conversations["refund"].pk)]
    assert "no full-text search" in content and "case-insensitive substring" in content


# --- sorting -------------------------------------------------------------------------------------------------------


SORTS = {
    "last_active": ("updated_at",),
    "created": ("created_at",),
    "cost": ("cost_micros",),
    "messages": ("message_count",),
}


@pytest.fixture
def varied(make_session):
    """Sessions that differ in every sortable column, with ties (broken by the id)."""
    now = timezone.now()
    made = []
    for index in range(9):
        calls = [Call(cost_micros=(index % 3) * 1000, input_tokens=100 * (index % 4), output_tokens=7)]
        turns = [Turn(f"m{index}", calls)] * (1 + index % 2)
        made.append(make_session(scope=f"s{index % 2}", turns=turns, at=now - timedelta(minutes=10 * (index % 5))))
    return made


@pytest.mark.parametrize("column", ["last_active", "created", "cost", "tokens", "messages"])
@pytest.mark.parametrize("descending", [True, False])
def test_sorting_by_each_column_both_ways_matches_sql(staff_client, varied, column, descending):
    sort = f"-{column}" if descending else column
    content = staff_client.get(URL + f"?sort={sort}").content.decode()
    sign = "-" if descending else ""
    if column == "tokens":
        from django.db.models import F

        key = F("input_tokens") + F("output_tokens")
        ordered = Session.all_scopes.order_by(key.desc() if descending else key.asc(), f"{sign}id")
    else:
        ordered = Session.all_scopes.order_by(f"{sign}{SORTS[column][0]}", f"{sign}id")
    assert listed_ids(content) == ids_of(ordered)
    header = re.search(rf'aria-sort="(\w+)" data-column="{column}">\s*<a class="sort-link" href="([^"]*)"', content)
    assert header[1] == ("descending" if descending else "ascending")
    assert f"sort={column if descending else '-' + column}" in html.unescape(header[2]), "the link flips it"


def test_a_column_not_sorted_by_links_to_largest_first(staff_client, varied):
    content = staff_client.get(URL).content.decode()
    assert re.search(r'aria-sort="descending" data-column="last_active"', content), "newest activity first by default"
    link = re.search(r'aria-sort="none" data-column="cost">\s*<a class="sort-link" href="([^"]*)"', content)[1]
    assert "sort=-cost" in html.unescape(link)


# --- numbered pages --------------------------------------------------------------------------------------------------


def walk(client, url: str, link: str) -> list[list[str]]:
    pages = []
    while url:
        content = client.get(url).content.decode()
        pages.append(listed_ids(content))
        match = re.search(rf'<a rel="{link}" href="([^"]*)"', content)
        url = URL + html.unescape(match.group(1)) if match else None
        assert len(pages) < 50
    return pages


def test_pages_have_no_duplicates_or_gaps_both_ways(staff_client, make_session):
    moment = timezone.now() - timedelta(hours=3)
    for index in range(23):  # some share the same updated_at: the id breaks ties
        make_session(scope=f"s{index % 4}", title=f"T{index}", at=moment - timedelta(minutes=index // 3))
    expected = ids_of(Session.all_scopes.order_by("-updated_at", "-id"))
    forward = walk(staff_client, URL + "?per=5", "next")
    assert [len(page) for page in forward] == [5, 5, 5, 5, 3]
    assert [pk for page in forward for pk in page] == expected
    backward = walk(staff_client, URL + "?per=5&page=5", "prev")
    assert backward == forward[::-1]
    # Numbered links: page 3 directly, and the pager says where it is.
    content = staff_client.get(URL + "?per=5&page=3").content.decode()
    assert listed_ids(content) == expected[10:15]
    assert "11–15 of 23" in content and "page 3 of 5" in content
    assert '<span class="page-link page-on" aria-current="page">3</span>' in content
    numbers = re.findall(r'aria-label="Page (\d+)"', content)
    assert numbers == ["1", "2", "4", "5"]


def test_page_links_skip_far_pages(staff_client, make_session):
    for index in range(60):
        make_session(scope="many", title=f"P{index}", at=timezone.now() - timedelta(minutes=index))
    content = staff_client.get(URL + "?per=5&page=6").content.decode()
    assert re.findall(r'aria-label="Page (\d+)"', content) == ["1", "4", "5", "7", "8", "12"]
    assert content.count('class="page-gap"') == 2


def test_pagination_keeps_the_filters(staff_client, make_session):
    for index in range(12):
        make_session(scope="paged", title=f"P{index}", at=timezone.now() - timedelta(minutes=10 * index))
    make_session(scope="other")
    pages = walk(staff_client, URL + "?per=5&scope=paged&sort=created", "next")
    ids = [pk for page in pages for pk in page]
    assert len(ids) == len(set(ids)) == 12
    assert ids == ids_of(Session.all_scopes.filter(scope="paged").order_by("created_at", "id"))


# --- invalid values ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, param, message",
    [
        ("from=2025-02-30", "from", "not a date"),
        ("to=yesterday", "to", "not a date"),
        ("from=2025-06-10&to=2025-06-01", "to", "is before from"),
        ("range=fortnight", "range", "not one of"),
        ("cost_min=cheap", "cost_min", "not an amount in dollars"),
        ("cost_min=-1", "cost_min", "not an amount in dollars"),
        ("cost_max=NaN", "cost_max", "not an amount in dollars"),
        ("cost_min=0.0000001", "cost_min", "more precise than a micro-dollar"),
        ("cost_min=5&cost_max=1", "cost_max", "is below cost_min"),
        ("latency_min=fast", "latency_min", "not a whole number"),
        ("latency_min=900&latency_max=100", "latency_max", "is below latency_min"),
        ("status=sleeping", "status", "not one of: idle, running, interrupted, error"),
        ("sort=title", "sort", "not one of"),
        ("sort=--cost", "sort", "not one of"),
        ("deploy=nope", "deploy", "no such deploy"),
        ("model=" + "m" * 101, "model", "longer than 100 characters"),
        ("page=0", "page", "must be between 1"),
        ("page=two", "page", "not a whole number"),
        ("page=2", "page", "past the last page (1 of 11 sessions)"),
        ("per=1000", "per", "must be between 5 and 200"),
        ("per=4", "per", "must be between 5 and 200"),
        ("q=" + "x" * 10_000, "q", "longer than 200 characters"),
        ("q=a%00b", "q", "contains a NUL character"),
        ("user=%00", "user", "contains a NUL character"),
        ("scope=a%00b", "scope", "contains a NUL character"),
        ("tag=" + "t" * 65, "tag", "longer than 64 characters"),
        ("find=" + "f" * 300, "find", "longer than 255 characters"),
    ],
)
def test_an_invalid_value_is_a_400_naming_the_parameter(staff_client, population, query, param, message):
    response = staff_client.get(URL + "?" + query)
    assert response.status_code == 400
    content = response.content.decode()
    found = errors(content)
    assert list(found) == [param]
    assert message in found[param]
    assert listed_ids(content) == [], "no list under invalid filters"
    assert 'id="session-filters"' in content, "the form is there to fix it"


def test_every_invalid_parameter_is_listed_at_once_and_a_link_leaves_them_out(staff_client, population):
    query = "?from=2025-13-01&cost_min=abc&status=zzz&sort=bogus&per=0&q=ok&model=claude-haiku-4-5"
    response = staff_client.get(URL + query)
    assert response.status_code == 400
    content = response.content.decode()
    assert set(errors(content)) == {"from", "cost_min", "status", "sort", "per"}
    assert "5 filters are invalid" in content
    for name in ("cost_min", "from"):
        assert re.search(rf'name="{name}" value="[^"]*"[^>]*aria-invalid="true"', content), name
    assert 'name="cost_min" value="abc"' in content, "the form shows what was sent, to be fixed"
    link = html.unescape(re.search(r'id="without-invalid-link" href="([^"]*)"', content)[1])
    fixed = staff_client.get(link)
    assert fixed.status_code == 200
    assert "q=ok" in link and "model=claude-haiku-4-5" in link, "the valid filters stay"
    assert total(fixed.content.decode()) == 0  # q=ok matches nothing here


def test_a_page_past_the_last_links_to_the_last_page(staff_client, population):
    response = staff_client.get(URL + "?per=5&page=9&scope=tenant-a")
    assert response.status_code == 400
    content = response.content.decode()
    assert "past the last page (1 of 5 sessions)" in errors(content)["page"]
    last = html.unescape(re.search(r'id="last-page-link" href="([^"]*)"', content)[1])
    assert "page=1" in last and "scope=tenant-a" in last and "per=5" in last
    assert staff_client.get(URL + last).status_code == 200
    assert chips(content)["tenant-a"][0] == 5, "the counts are still shown"


def test_a_huge_or_nul_value_is_shown_cut_and_escaped(staff_client, population):
    content = staff_client.get(URL + "?q=" + "<b>" * 4000).content.decode()
    assert "<b><b>" not in content
    assert "(12,000 characters)" in content
    content = staff_client.get(URL + "?user=a%00b").content.decode()
    assert "a\\0b" in content and "\x00" not in content


@pytest.mark.django_db
def test_an_empty_list_has_one_page(staff_client):
    response = staff_client.get(URL + "?page=1")
    assert response.status_code == 200
    assert "No sessions match these filters." in response.content.decode()
    assert staff_client.get(URL + "?page=2").status_code == 400


# --- rows ------------------------------------------------------------------------------------------------------


def test_costs_are_shown_formatted_and_unpriced_never_as_zero(staff_client, population):
    content = staff_client.get(URL + "?scope=tenant-z").content.decode()
    row = content[content.index('data-scope="tenant-z"', content.index("<tbody>")) :]
    row = row[: row.index("</tr>")]
    assert "unpriced" in row and "$0" not in row
    content = staff_client.get(URL + "?scope=tenant-a").content.decode()
    assert "$0.0006" in content  # 600 micro-dollars


def test_rows_link_to_the_replay_and_to_their_user_and_tags(staff_client, make_session):
    session = make_session(scope="tenant-q", title="<b>Bold</b> title", user_sub="sub-1", tags=["vip"])
    content = staff_client.get(URL + "?status=idle").content.decode()
    assert reverse("studio:replay", args=[session.pk]) in content
    assert "&lt;b&gt;Bold&lt;/b&gt; title" in content and "<b>Bold</b>" not in content
    user_link = html.unescape(re.search(r'class="row-user" href="([^"]*)"', content)[1])
    assert "user=sub-1" in user_link and "status=idle" in user_link
    tag_link = html.unescape(re.search(r'class="tag" href="([^"]*)"', content)[1])
    assert "tag=vip" in tag_link


@pytest.mark.django_db
def test_empty_database(staff_client):
    content = staff_client.get(URL).content.decode()
    assert "No sessions match these filters." in content
    assert staff_client.get(URL + "?scope=" + q("nobody")).status_code == 200
