"""Studio fixtures: staff, non-staff and anonymous clients, hand-made sessions, generated demo data."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

import pytest
from django.core.management import call_command

from tests.studio import factories


@pytest.fixture
def staff_client(admin_client):
    """A logged-in staff user (pytest-django's superuser `admin_client`)."""
    return admin_client


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

    def generate(*, scopes: int = 8, sessions: int = 40, usage_rows: int = 160, days: int = 30, seed: int = 3,
                 clear: bool = False) -> None:
        args = ["generate_demo_data", "--scopes", str(scopes), "--sessions", str(sessions),
                "--usage-rows", str(usage_rows), "--days", str(days), "--seed", str(seed)]
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
