"""Security headers (SPEC §8): a Content-Security-Policy without inline script on the HTML pages (admin,
Studio), nosniff, Referrer-Policy and X-Frame-Options everywhere, and HTTPS-only cookies plus HSTS with
AMODAL_SECURE_COOKIES=1. The pages themselves must work under the policy: no inline script or style."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys

import pytest
from asgiref.sync import iscoroutinefunction
from django.contrib import admin
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from amodal_site.security import CONTENT_SECURITY_POLICY, ContentSecurityPolicyMiddleware
from tests.e2e.live import REPO_ROOT
from tests.studio import factories

CSP = "Content-Security-Policy"


def directives(policy: str) -> dict[str, list[str]]:
    parsed = [part.split() for part in policy.split(";") if part.strip()]
    return {name: sources for name, *sources in parsed}


def test_the_policy_allows_no_inline_script_or_style_and_no_framing():
    policy = directives(CONTENT_SECURITY_POLICY)
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert not any("unsafe" in source for sources in policy.values() for source in sources)


@pytest.mark.django_db
def test_html_pages_have_the_policy_and_the_other_headers(client, admin_client):
    for response in (
        client.get(reverse("admin:login")),
        admin_client.get(reverse("admin:index")),
        admin_client.get(reverse("studio:sessions")),
    ):
        assert response.status_code == 200
        assert response[CSP] == CONTENT_SECURITY_POLICY
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in response, "HSTS only with AMODAL_SECURE_COOKIES=1"


@pytest.mark.django_db
def test_json_answers_get_nosniff_but_no_policy(client):
    response = client.get("/health")
    assert response["Content-Type"].startswith("application/json")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert CSP not in response


def test_the_widget_files_and_its_demo_page_get_no_policy(client, settings, db):
    settings.DEBUG = True  # the demo page is served in development only
    asset = client.get(reverse("widget:asset", args=["chat-widget.js"]))
    assert asset.status_code == 200 and CSP not in asset
    demo = client.get(reverse("widget:demo"))
    assert demo.status_code == 200 and demo["Content-Type"].startswith("text/html")
    assert CSP not in demo, "the demo stands for a SaaS page, with an inline module script"


@pytest.mark.django_db
def test_error_pages_have_the_policy_except_debug_pages(client, settings):
    assert client.get("/studio/no-such-page/")[CSP] == CONTENT_SECURITY_POLICY
    settings.DEBUG = True
    response = client.get("/studio/no-such-page/")
    assert response.status_code == 404 and CSP not in response, "Django's technical 404 page has inline styles"


def call(middleware: ContentSecurityPolicyMiddleware, path: str = "/admin/") -> HttpResponse:
    return asyncio.run(middleware(RequestFactory().get(path)))


def test_the_middleware_is_async_only():
    async def get_response(request):
        return HttpResponse("<p>hi</p>")

    middleware = ContentSecurityPolicyMiddleware(get_response)
    assert ContentSecurityPolicyMiddleware.async_capable and not ContentSecurityPolicyMiddleware.sync_capable
    assert iscoroutinefunction(middleware)
    assert call(middleware)[CSP] == CONTENT_SECURITY_POLICY


def test_streaming_responses_pass_untouched():
    started: list[str] = []

    async def chunks(name: str):
        started.append(name)
        yield "<p>one</p>"
        yield "<p>two</p>"

    for content_type in ("text/html", "text/event-stream"):
        response = StreamingHttpResponse(chunks(content_type), content_type=content_type)

        async def get_response(request, response=response):
            return response

        result = call(ContentSecurityPolicyMiddleware(get_response))
        assert result is response and CSP not in result
    assert started == [], "no chunk was read: the stream is not buffered"

    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    assert asyncio.run(read()) == b"<p>one</p><p>two</p>"


def test_a_policy_set_by_a_view_is_kept_and_json_gets_none():
    async def own_policy(request):
        response = HttpResponse("<p>framed</p>")
        response[CSP] = "frame-ancestors 'self'"
        return response

    async def data(request):
        return JsonResponse({"ok": True})

    assert call(ContentSecurityPolicyMiddleware(own_policy))[CSP] == "frame-ancestors 'self'"
    assert CSP not in call(ContentSecurityPolicyMiddleware(data))


SETTINGS_PROBE = (
    "import json, amodal_site.settings as s; print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
    "s.SECURE_HSTS_SECONDS, s.SECURE_CONTENT_TYPE_NOSNIFF, s.SECURE_REFERRER_POLICY, s.X_FRAME_OPTIONS]))"
)


@pytest.mark.parametrize(("value", "secure"), [("1", True), ("", False), ("0", False)])
def test_secure_cookies_and_hsts_come_with_amodal_secure_cookies(value, secure):
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "AMODAL_SECURE_COOKIES": value, "PYTHONPATH": str(REPO_ROOT)}
    output = subprocess.run(
        [sys.executable, "-c", SETTINGS_PROBE],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    session_secure, csrf_secure, hsts_seconds, nosniff, referrer, frame = json.loads(output)
    assert (session_secure, csrf_secure) == (secure, secure)
    assert (hsts_seconds >= 180 * 24 * 3600) if secure else hsts_seconds == 0
    assert (nosniff, referrer, frame) == (True, "same-origin", "DENY")


@pytest.mark.django_db
def test_hsts_and_secure_cookies_on_https_when_enabled(client, settings, django_user_model):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    django_user_model.objects.create_superuser("root", password="root-pw-0912")
    login = client.get(reverse("admin:login"), secure=True)
    assert login["Strict-Transport-Security"] == "max-age=31536000"
    assert login.cookies["csrftoken"]["secure"]
    response = client.post(reverse("admin:login"), {"username": "root", "password": "root-pw-0912"}, secure=True)
    assert response.status_code == 302 and response.cookies["sessionid"]["secure"]


# --- the pages work under the policy: nothing inline that it would block -------------------------------------

SCRIPT_TAG = re.compile(r"<script\b([^>]*)>", re.I)
INLINE_STYLE = re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I)
EVENT_HANDLER = re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I)


def blocked_inline(html: str) -> list[str]:
    """What a `script-src 'self'; style-src 'self'` policy would refuse on this page."""
    problems = [
        f"inline script {attrs.strip()!r}"
        for attrs in SCRIPT_TAG.findall(html)
        if "src=" not in attrs and 'type="application/json"' not in attrs
    ]
    problems += ["<style> block"] * len(re.findall(r"<style\b", html, re.I))
    problems += [f"style attribute in {match[:80]!r}" for match in INLINE_STYLE.findall(html)]
    problems += [f"event handler in {match[:80]!r}" for match in EVENT_HANDLER.findall(html)]
    return problems


def admin_pages() -> list[str]:
    pages = [reverse("admin:index"), reverse("admin:password_change")]
    for model in admin.site._registry:
        for view in ("changelist", "add"):
            try:
                pages.append(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}"))
            except NoReverseMatch:
                continue
    return pages


def test_studio_and_admin_pages_have_nothing_inline_that_the_policy_blocks(admin_client, db):
    session = factories.make_session(scope="tenant-a", turns=[factories.Turn("Hello **there**")])
    studio_pages = [
        reverse("studio:sessions"),
        reverse("studio:replay", args=[session.pk]),
        reverse("studio:usage") + "?scope=tenant-a",
        reverse("studio:scopes"),
        reverse("studio:scope") + "?scope=tenant-a",
        reverse("studio:scope_memory") + "?scope=tenant-a",
        reverse("studio:scope_stores") + "?scope=tenant-a",
        reverse("admin:agents_session_change", args=[session.pk]),
    ]
    checked = 0
    for url in [*studio_pages, *admin_pages()]:
        response = admin_client.get(url)
        if response.status_code == 403:
            continue  # an admin that allows no adding
        assert response.status_code == 200, url
        assert blocked_inline(response.content.decode()) == [], url
        checked += 1
    assert checked >= len(studio_pages) + 5
