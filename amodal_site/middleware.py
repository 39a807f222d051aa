"""JSON errors for what the views never see, on the API paths only (SPEC §3: `/chat`, `/sessions/`,
`/api/`, `/ws/`); admin, Studio and the widget keep Django's HTML pages.

- Before the view: a body over `AMODAL_MAX_BODY_BYTES` is 413 `request_too_large` (by `Content-Length`
  before the body is read, then by its real size, for a chunked body), and a NUL or lone surrogate in the
  URL or a query parameter is 400 naming the parameter.
- An exception a view lets out (`process_exception`) becomes its error (core.errors): an
  unavailable database 503 with Retry-After, anything unexpected a logged 500 `internal_error`.
- A non-JSON error response from Django itself (404 for an unknown path, 405 from `require_POST`, the
  500 page of an exception in another middleware) is rewritten in the error shape, headers kept.

Async only, so it adds no thread hop to the event stream; streaming responses pass through untouched.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from asgiref.sync import markcoroutinefunction
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.security import SecurityMiddleware

from core.errors import RequestTooLarge, exception_to_error, is_json, rewrite_as_json
from core.validation import check_text

API_PATH_RE = re.compile(r"^/(chat(/|$)|sessions/|api/|ws/)")


def is_api_path(path: str) -> bool:
    return API_PATH_RE.match(path) is not None


def content_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


def check_request(request: HttpRequest) -> None:
    """Refuse, before any view reads it, a body that is too large or a URL that cannot be stored."""
    limit = settings.AMODAL_MAX_BODY_BYTES
    declared = content_length(request)
    if declared is not None and declared > limit:
        raise RequestTooLarge(limit)
    try:
        size = len(request.body)  # read once (and kept) so a chunked body is measured too
    except RequestDataTooBig:
        raise RequestTooLarge(limit) from None
    if size > limit:
        raise RequestTooLarge(limit)
    check_text(request.path, "path")
    for name, values in request.GET.lists():
        check_text(name, "query")
        for value in values:
            check_text(value, name)


class AsyncMiddleware:
    """A middleware Django calls only on the event loop: no thread hand-off on the streaming path."""

    sync_capable = False
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        raise NotImplementedError  # each middleware defines its own


class ApiErrorMiddleware(AsyncMiddleware):
    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not is_api_path(request.path_info):
            return await self.get_response(request)
        try:
            check_request(request)
            response = await self.get_response(request)
        except Exception as exc:  # an ApiError from check_request, or whatever a layer inside let out
            return exception_to_error(exc, path=request.path).as_response()
        if response.status_code >= 400 and isinstance(response, HttpResponse) and not is_json(response):
            return rewrite_as_json(response, request.method or "")
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A view's exception on an API path (Django calls this synchronously, on the error path only)."""
        if not is_api_path(request.path_info):
            return None
        return exception_to_error(exception, path=request.path).as_response()


class InlineSecurityMiddleware(AsyncMiddleware):
    """Django's SecurityMiddleware (nosniff, Referrer-Policy, Cross-Origin-Opener-Policy, HSTS, the HTTPS
    redirect) run on the event loop: its hooks only read settings and set headers, so the thread hand-off
    Django would add around them buys nothing (used on the chat paths, amodal_site.handlers)."""

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        super().__init__(get_response)
        self.security = SecurityMiddleware(get_response)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.security.process_request(request) or await self.get_response(request)
        return self.security.process_response(request, response)  # type: ignore[arg-type]  # any response
