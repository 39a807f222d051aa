"""The ASGI handler of the chat paths (`AMODAL_ASYNC_PATHS`): Django's own, with async middleware only.

Under ASGI, Django runs each sync middleware (sessions, auth, CSRF, messages, common, X-Frame-Options)
in a worker thread, twice per request: fourteen hand-offs, more than the rest of a chat message costs.
The chat authenticates with bearer tokens only, so it needs none of them: these paths get CORS, the JSON
error layer, the security headers and the CSP, all run on the event loop. Everything else keeps the full
stack of settings.MIDDLEWARE.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response
from django.utils.module_loading import import_string

ASYNC_PATH_MIDDLEWARE = (
    "corsheaders.middleware.CorsMiddleware",
    "amodal_site.middleware.ApiErrorMiddleware",
    "amodal_site.middleware.InlineSecurityMiddleware",
    "amodal_site.security.ContentSecurityPolicyMiddleware",
)


class AsyncPathsHandler(ASGIHandler):
    middleware_paths = ASYNC_PATH_MIDDLEWARE

    def load_middleware(self, is_async: bool = False) -> None:
        """Like BaseHandler.load_middleware, over this handler's list, refusing any sync-only entry."""
        self._view_middleware: list = []
        self._template_response_middleware: list = []
        self._exception_middleware: list = []
        handler = convert_exception_to_response(self._get_response_async)  # type: ignore[attr-defined]  # not in the stubs
        for path in reversed(self.middleware_paths):
            middleware = import_string(path)
            if not getattr(middleware, "async_capable", False):
                raise ImproperlyConfigured(f"{path} is not async-capable; it would hand every request to a thread.")
            instance = middleware(handler)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler


class PathRouter:
    """Sends the chat paths to `AsyncPathsHandler`, everything else to the full Django application."""

    def __init__(self, *, async_paths: tuple[str, ...], fast: object, default: object) -> None:
        self.async_paths = frozenset(async_paths)
        self.fast = fast
        self.default = default

    async def __call__(self, scope, receive, send) -> None:
        app = self.fast if scope.get("path") in self.async_paths else self.default
        await app(scope, receive, send)  # type: ignore[operator]
