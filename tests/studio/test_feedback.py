"""End users' feedback in Studio: the sessions list's `feedback` filter (page, chips, CSV, pages), the ratings
in the replay, and the share of positive ratings per scope and per deploy on Cost & Usage (page and CSV)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from agents.models import Feedback
from tests.studio.conftest import attrs, q
from tests.studio.factories import Call, Turn, make_session, rate
from tests.studio.test_usage import csv_of, read_csv, section

pytestmark = pytest.mark.django_db

SESSIONS = reverse("studio:sessions")


@pytest.fixture
def rated():
    """Sessions rated positive, negative, both ways, not at all, and one rated in another scope."""
    sessions = {
        name: make_session(scope=scope, title=name, model=model, turns=[Turn("q", [Call(), Call(text="answer")])])
        for name, scope, model in [
            ("liked", "tenant-a", "m1"),
            ("disliked", "tenant-a", "m1"),
            ("mixed", "tenant-a", "m2"),
            ("unrated", "tenant-a", "m1"),
            ("liked-b", "tenant-b", "m1"),
        ]
    }
    rate(sessions["liked"], 1, answer=1)
    rate(sessions["disliked"], -1)
    rate(sessions["mixed"], 1, user_sub="u1")
    rate(sessions["mixed"], -1, user_sub="u2", answer=0)
    rate(sessions["liked-b"], 1)
    return sessions


def titles(client, query: str) -> set[str]:
    response = client.get(SESSIONS + query)
    assert response.status_code == 200, response.content
    content = response.content.decode()
    return set(re.findall(r'<a href="/studio/sessions/[^"]+/">([^<]+)</a>', content))


@pytest.mark.parametrize(
    "value, expected",
    [
        ("positive", {"liked", "mixed", "liked-b"}),
        ("negative", {"disliked", "mixed"}),
        ("any", {"liked", "disliked", "mixed", "liked-b"}),
        ("none", {"unrated"}),
        ("", {"liked", "disliked", "mixed", "unrated", "liked-b"}),
    ],
)
def test_the_feedback_filter(staff_client, rated, value, expected):
    assert titles(staff_client, f"?feedback={value}") == expected


def test_the_feedback_filter_with_the_others_the_chips_the_csv_and_pages(staff_client, rated):
    assert titles(staff_client, "?feedback=positive&scope=tenant-a") == {"liked", "mixed"}
    assert titles(staff_client, "?feedback=positive&model=m1") == {"liked", "liked-b"}
    content = staff_client.get(SESSIONS + "?feedback=negative").content.decode()
    chips = dict(zip(attrs(content, "a", "data-scope"), attrs(content, "a", "data-count"), strict=True))
    assert chips == {"tenant-a": "2"}
    assert 'name="feedback"' in content and '<option value="negative" selected>' in content

    response = staff_client.get(reverse("studio:sessions_csv") + "?feedback=positive&sort=-cost")
    rows = read_csv(response)
    assert {row[3] for row in rows[1:]} == {"liked", "mixed", "liked-b"}
    assert "feedback-positive" in response["Content-Disposition"]

    assert titles(staff_client, "?feedback=any&per=5") == {"liked", "disliked", "mixed", "liked-b"}
    for number in range(5):
        make_session(scope="tenant-c", title=f"more-{number}")
        rate(make_session(scope="tenant-c", title=f"rated-{number}"), -1)
    first, second = (titles(staff_client, f"?feedback=negative&per=5&page={n}&sort=created") for n in (1, 2))
    assert len(first) == 5 and len(second) == 2
    assert first | second == {"disliked", "mixed", *(f"rated-{n}" for n in range(5))}


@pytest.mark.parametrize("value", ["good", "POSITIVE", "1", "positive\x00"])
def test_an_invalid_feedback_filter_is_shown_not_dropped(staff_client, rated, value):
    response = staff_client.get(SESSIONS + "?feedback=" + q(value))
    assert response.status_code == 400
    content = response.content.decode()
    assert '<li data-param="feedback"><code class="param">feedback</code>' in content
    assert "not one of: positive, negative, any, none" in content or "NUL" in content
    csv = staff_client.get(reverse("studio:sessions_csv") + "?feedback=" + q(value))
    assert csv.status_code == 400


# --- replay ----------------------------------------------------------------------------------------------


def replay(client, session) -> str:
    response = client.get(reverse("studio:replay", args=[session.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_replay_shows_session_ratings_at_the_top_and_message_ratings_at_the_message(staff_client, rated):
    session = rated["mixed"]
    rate(session, 1, user_sub="u3", comment="<b>Great</b>\nthanks")
    content = replay(staff_client, session)
    top = section(content, "session-feedback")
    assert "3 ratings: <strong>2</strong> positive, <strong>1</strong> negative" in top
    assert attrs(top, "li", "data-user") == ["u1", "u3"]  # the session's own ratings, oldest first
    assert "&lt;b&gt;Great&lt;/b&gt;\nthanks" in top and "<b>Great" not in top
    answers = re.findall(r'<article class="msg msg-assistant[^"]*" data-seq="(\d+)">(.*?)</article>', content, re.S)
    rated_at = {seq: attrs(body, "li", "data-rating") for seq, body in answers}
    assert rated_at == {"1": ["-1"], "2": []}  # u2's rating of the first answer, at that answer

    unrated = replay(staff_client, rated["unrated"])
    assert "No end user has rated this session or its answers." in section(unrated, "session-feedback")


# --- Cost & Usage ------------------------------------------------------------------------------------------


@pytest.fixture
def usage_with_ratings():
    """tenant-a on two deploys, tenant-b on one; ratings inside the last 7 days and one older."""
    now = timezone.now()
    a1 = make_session(scope="tenant-a", deploy_id="deploy-one", at=now - timedelta(days=2))
    a2 = make_session(scope="tenant-a", deploy_id="deploy-two", at=now - timedelta(days=2))
    b1 = make_session(scope="tenant-b", deploy_id="deploy-one", at=now - timedelta(days=2))
    for session, rating, user in [(a1, 1, "u1"), (a1, -1, "u2"), (a1, 1, "u3"), (a2, -1, "u1"), (b1, 1, "u1")]:
        rate(session, rating, user_sub=user)
    rate(a2, 1, user_sub="old", at=now - timedelta(days=20))  # outside 7 days
    return a1, a2, b1


def cells(content: str, element_id: str, key: str) -> dict[str, tuple[str, str]]:
    """Each row's (ratings, positive) in a panel, by its data-`key`."""
    rows = re.findall(
        rf'<tr[^>]* data-{key}="([^"]*)".*?data-ratings="(\d+)" data-positive="(\d+)"',
        section(content, element_id),
        re.S,
    )
    return {name: (ratings, positive) for name, ratings, positive in rows}


def test_positive_share_per_scope_and_per_deploy(staff_client, usage_with_ratings):
    content = staff_client.get("/studio/usage/?range=7d").content.decode()
    assert cells(content, "scope-ranking", "scope") == {"tenant-a": ("4", "2"), "tenant-b": ("1", "1")}
    assert cells(content, "by-deploy", "deploy") == {"deploy-one": ("4", "3"), "deploy-two": ("1", "0")}
    ranking = section(content, "scope-ranking")
    assert 'title="2 of 4 ratings positive">50%</span>' in ranking

    focused = staff_client.get("/studio/usage/?range=7d&scope=tenant-a").content.decode()
    assert cells(focused, "by-deploy", "deploy") == {"deploy-one": ("3", "2"), "deploy-two": ("1", "0")}
    longer = staff_client.get("/studio/usage/?range=30d").content.decode()
    assert cells(longer, "by-deploy", "deploy")["deploy-two"] == ("2", "1")  # the older rating is in range


def test_positive_share_in_the_csv_of_the_scopes_and_the_deploys(staff_client, usage_with_ratings):
    header, scopes, _ = csv_of(staff_client, "scopes", "range=7d")
    assert header[-3:] == ["ratings", "positive_ratings", "positive_share"]
    assert {row["scope"]: (row["ratings"], row["positive_ratings"], row["positive_share"]) for row in scopes} == {
        "tenant-a": ("4", "2", "0.5"),
        "tenant-b": ("1", "1", "1.0"),
    }
    header, deploys, _ = csv_of(staff_client, "by-deploy", "range=7d&scope=" + q("tenant-b"))
    assert header[-3:] == ["ratings", "positive_ratings", "positive_share"]
    assert [(row["deploy_id"], row["ratings"], row["positive_share"]) for row in deploys] == [
        ("deploy-one", "1", "1.0")
    ]
    make_session(scope="tenant-c", deploy_id="deploy-three")
    _, deploys, _ = csv_of(staff_client, "by-deploy", "range=7d&scope=" + q("tenant-c"))
    assert [(row["ratings"], row["positive_ratings"], row["positive_share"]) for row in deploys] == [("0", "0", "")]


# --- Admin: every rating, read-only ---------------------------------------------------------------------

FEEDBACK_ADMIN = reverse("admin:agents_feedback_changelist")


def ratings_listed(page: str) -> list[str]:
    """The rating column of the admin's list, top to bottom (the first column: a link to each rating)."""
    return re.findall(r'<th class="field-shown_rating"><a href="[^"]+">(positive|negative)</a></th>', page)


def test_the_feedback_admin_lists_every_scopes_ratings_read_only(admin_client, rated):
    rate(rated["unrated"], -1, comment="Wrong total. " + "x" * 200)
    listing = admin_client.get(FEEDBACK_ADMIN)
    assert listing.status_code == 200
    page = listing.content.decode()
    # Newest first: the rating just made, then the fixture's in reverse order of making.
    assert ratings_listed(page) == ["negative", "positive", "negative", "positive", "negative", "positive"]
    assert "tenant-a" in page and "tenant-b" in page  # across scopes
    assert "Wrong total. " + "x" * 106 + "…" in page and "x" * 108 not in page  # the comment, shortened
    assert reverse("studio:replay", args=[rated["liked-b"].pk]) in page
    assert "an answer" in page and "the session" in page

    feedback = Feedback.all_scopes.get(session=rated["liked-b"])
    detail = admin_client.get(reverse("admin:agents_feedback_change", args=[feedback.pk]))
    assert detail.status_code == 200 and b'name="comment"' not in detail.content, "no editable fields"
    assert admin_client.get(reverse("admin:agents_feedback_add")).status_code == 403
    deleted = admin_client.post(reverse("admin:agents_feedback_delete", args=[feedback.pk]), {"post": "yes"})
    assert deleted.status_code == 403 and Feedback.all_scopes.filter(pk=feedback.pk).exists()


def test_the_feedback_admin_filters_by_rating_and_searches_comments(admin_client, rated):
    rate(rated["unrated"], -1, comment="missing the rent")
    negative = admin_client.get(FEEDBACK_ADMIN + "?rating=-1").content.decode()
    assert ratings_listed(negative) == ["negative"] * 3
    found = admin_client.get(FEEDBACK_ADMIN + "?q=rent").content.decode()
    assert "missing the rent" in found and ratings_listed(found) == ["negative"]


def test_staff_without_the_view_permission_sees_no_feedback(plain_staff_client, rated):
    assert plain_staff_client.get(FEEDBACK_ADMIN).status_code == 403


def test_the_feedback_admin_page_costs_the_same_queries_for_more_ratings(admin_client, rated):
    with CaptureQueriesContext(connection) as few:
        admin_client.get(FEEDBACK_ADMIN)
    for index in range(10):
        rate(rated["unrated"], 1, user_sub=f"more-{index}")
    with CaptureQueriesContext(connection) as more:
        admin_client.get(FEEDBACK_ADMIN)
    assert len(more) == len(few), [query["sql"] for query in more.captured_queries]
