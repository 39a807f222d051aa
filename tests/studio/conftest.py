"""Studio fixtures: Studio viewers, staff without Studio, non-staff and anonymous clients, hand-made sessions,
generated demo data."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.test import Client

from tests.studio import factories

STAFF_PASSWORD = "staff-pw-5c2e9a71"


def studio_permission() -> Permission:
    return Permission.objects.get(content_type__app_label="studio", codename="view_studio")


@pytest.fixture
def make_staff(django_user_model) -> Callable[..., object]:
    """`make_staff(username, *, studio=False, is_staff=True)`: a user who may log in to the admin, with
    `studio.view_studio` given directly when `studio`."""

    def make(username: str, *, studio: bool = False, is_staff: bool = True):
        user = django_user_model.objects.create_user(username=username, password=STAFF_PASSWORD, is_staff=is_staff)
        if studio:
            user.user_permissions.add(studio_permission())
        return user

    return make


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_client(make_staff) -> Client:
    """A logged-in staff user with Studio's permission and no other: not a superuser."""
    return logged_in(make_staff("operator", studio=True))


@pytest.fixture
def plain_staff_client(make_staff) -> Client:
    """A logged-in staff user without Studio's permission."""
    return logged_in(make_staff("staff-without-studio"))


@pytest.fixture
def user_client(client, django_user_model):
    """A logged-in user who is not staff."""
    user = django_user_model.objects.create_user(username="customer", password="not-staff-pw-123")
    client.force_login(user)
    return client


@pytest.fixture
def make_session(db) -> Callable[..., object]:
    return factories.make_session


@pytest.fixture
def demo_data(db) -> Callable[..., None]:
    """Generate demo data with the management command (small sizes, fixed seed)."""

    def generate(
        *,
        scopes: int = 8,
        sessions: int = 40,
        usage_rows: int = 160,
        days: int = 30,
        seed: int = 3,
        clear: bool = False,
    ) -> None:
        args = [
            "generate_demo_data",
            "--scopes",
            str(scopes),
            "--sessions",
            str(sessions),
            "--usage-rows",
            str(usage_rows),
            "--days",
            str(days),
            "--seed",
            str(seed),
        ]
        if clear:
            args.append("--clear")
        call_command(*args, stdout=open("/dev/null", "w"))  # noqa: SIM115

    return generate


def q(value: str) -> str:
    return quote(value, safe="")


def attrs(html: str, element: str, attribute: str) -> list[str]:
    """Values of `attribute` on every `<element ...>` tag, in document order (unescaped)."""
    import html as html_lib

    pattern = re.compile(rf"<{element}\b[^>]*?\b{attribute}=\"([^\"]*)\"", re.S)
    return [html_lib.unescape(value) for value in pattern.findall(html)]
