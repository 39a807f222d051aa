"""The embeddable chat widget's files, and its demo host page (development only).

- `/widget/amodal/<file>` serves the widget (the ES module, the classic-script loader and the CSS) from
  `agents/static/amodal/`, always, with `Access-Control-Allow-Origin: *`: a SaaS page on another origin
  can `import()` the module straight from this server (module scripts are fetched in CORS mode, and
  the static handler in front of Django does not add CORS headers). The files are public and carry no
  credentials, so `*` is safe here; the API itself answers CORS only for AMODAL_ALLOWED_ORIGINS.
- `/widget/demo/` is a host page with two demo households side by side, each widget with its own scope,
  context and server-minted token; `/widget/demo/token?household=...` mints a fresh short-lived token
  for `getToken`. Both mint tokens for anyone who asks, so they exist only when DEBUG is on (never in
  production, whatever AMODAL_DEMO_API says), and mint for the two demo households only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.errors import error_response
from scoping.tokens import mint_token

WIDGET_DIR = Path(__file__).resolve().parent / "static" / "amodal"
WIDGET_FILES = {
    "chat-widget.js": "text/javascript; charset=utf-8",
    "chat-widget-loader.js": "text/javascript; charset=utf-8",
    "chat-widget.css": "text/css; charset=utf-8",
}
ASSET_MAX_AGE_SECONDS = 300

DEMO_TOKEN_TTL_SECONDS = 300
DEMO_TOKEN_TTL_LIMIT = 3600


@dataclass(frozen=True)
class DemoHousehold:
    scope_id: str
    name: str
    members: str
    color: str

    @property
    def context(self) -> dict[str, str]:
        return {"household_id": self.scope_id}


DEMO_HOUSEHOLDS = {
    household.scope_id: household
    for household in (
        DemoHousehold("household-garcia", "The Garcias", "Maria & Luis · Joint Checking, Vacation Savings", "#4f46e5"),
        DemoHousehold("household-okafor", "The Okafors", "Ada & Chidi · Everyday Checking, Emergency Fund", "#0f766e"),
    )
}


# --- the widget's files ---------------------------------------------------------------------------------


@require_GET
def widget_asset(request: HttpRequest, filename: str) -> HttpResponse:
    content_type = WIDGET_FILES.get(filename)
    if content_type is None:
        raise Http404("No such widget file.")
    content = (WIDGET_DIR / filename).read_bytes()
    etag = f'"{hashlib.sha256(content).hexdigest()[:20]}"'
    if etag in {tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")}:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(content, content_type=content_type)
    response["ETag"] = etag
    response["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE_SECONDS}"
    response["Access-Control-Allow-Origin"] = "*"
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response


# --- the demo -------------------------------------------------------------------------------------------------


def require_demo() -> None:
    if not settings.DEBUG:
        raise Http404("The widget demo is served in development only.")


def token_ttl(raw: str | None) -> int:
    """The demo tokens' lifetime: `?token_ttl=` (seconds; negative = already expired, to show a refresh)."""
    try:
        ttl = int(raw) if raw not in (None, "") else DEMO_TOKEN_TTL_SECONDS
    except ValueError:
        ttl = DEMO_TOKEN_TTL_SECONDS
    return max(-DEMO_TOKEN_TTL_LIMIT, min(ttl, DEMO_TOKEN_TTL_LIMIT))


def demo_token_for(household: DemoHousehold, ttl_seconds: int) -> str:
    return mint_token(
        scope_id=household.scope_id,
        context=household.context,
        sub=f"{household.scope_id}-demo-user",
        ttl_seconds=ttl_seconds,
    )


@require_GET
def demo_page(request: HttpRequest) -> HttpResponse:
    require_demo()
    ttl = token_ttl(request.GET.get("token_ttl"))
    households = [
        {
            "scope_id": household.scope_id,
            "name": household.name,
            "members": household.members,
            "color": household.color,
            "context": household.context,
            "token": demo_token_for(household, ttl),
        }
        for household in DEMO_HOUSEHOLDS.values()
    ]
    response = render(request, "widget/demo.html", {"households": households, "token_ttl": ttl})
    response["Cache-Control"] = "no-store"
    return response


@require_GET
@never_cache
def demo_token(request: HttpRequest) -> JsonResponse:
    """A fresh short-lived JWT for one demo household (what a SaaS backend's token endpoint would do)."""
    require_demo()
    household = DEMO_HOUSEHOLDS.get(request.GET.get("household", ""))
    if household is None:
        return error_response(404, "not_found", f"household must be one of: {', '.join(DEMO_HOUSEHOLDS)}.")
    return JsonResponse(
        {
            "token": demo_token_for(household, DEMO_TOKEN_TTL_SECONDS),
            "scope_id": household.scope_id,
            "context": household.context,
            "expires_in": DEMO_TOKEN_TTL_SECONDS,
        }
    )
