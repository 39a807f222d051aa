"""The Content-Security-Policy of the HTML pages (admin, Studio): scripts, styles and everything else from
this server only; no inline script, no inline style, no framing.

Django's SecurityMiddleware and XFrameOptionsMiddleware add the other headers (settings.py: nosniff,
Referrer-Policy, X-Frame-Options, HSTS with AMODAL_SECURE_COOKIES). This middleware is async only, so
under daphne it adds no hand-off to a thread; Django adapts it under WSGI (the test client).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from amodal_site.middleware import AsyncMiddleware

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HEADER = "Content-Security-Policy"

# Pages that get no policy, each for a reason:
# - /widget/demo/ (development only, AMODAL_DEMO_API) is a stand-in for a SaaS page embedding the widget,
#   written the way such a page is: an inline module script and inline styles.
# The widget's own files (/widget/amodal/...) are JavaScript and CSS: a policy applies to documents only.
EXEMPT_PATH_PREFIXES = ("/widget/demo/",)


class ContentSecurityPolicyMiddleware(AsyncMiddleware):
    """Adds `Content-Security-Policy` to HTML responses that have none. Streaming responses (the event
    stream) pass untouched, and so do JSON, CSS, JavaScript and the other non-HTML answers. With DEBUG,
    error pages are left alone: Django's technical 404 and 500 pages use inline styles and scripts."""

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)
        if applies(request, response):
            response[HEADER] = CONTENT_SECURITY_POLICY
        return response


def applies(request: HttpRequest, response: HttpResponseBase) -> bool:
    if response.streaming or HEADER in response:
        return False
    if not response.get("Content-Type", "").startswith("text/html"):
        return False
    if settings.DEBUG and response.status_code >= 400:
        return False
    return not request.path.startswith(EXEMPT_PATH_PREFIXES)
