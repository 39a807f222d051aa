"""ASGI entry point: Django for HTTP (the chat paths through a handler without sync middleware, see
amodal_site.handlers), Channels for WebSocket."""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amodal_site.settings")
# Admin, Studio and widget assets are served straight from the apps' static folders by Django's own
# async static handler: no collectstatic step, no sync middleware in front of the event stream. Put a
# CDN or reverse proxy in front for heavy traffic.
django_asgi_app = ASGIStaticFilesHandler(get_asgi_application())

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up first)
from django.conf import settings  # noqa: E402

from amodal_site.handlers import AsyncPathsHandler, PathRouter  # noqa: E402
from amodal_site.websocket_urls import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": PathRouter(async_paths=settings.AMODAL_ASYNC_PATHS, fast=AsyncPathsHandler(), default=django_asgi_app),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
