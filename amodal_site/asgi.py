"""ASGI entry point: Django for HTTP (including the SSE stream), Channels for WebSocket."""

import os

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "amodal_site.settings")
# Admin, Studio and widget assets are served straight from the apps' static folders by Django's own
# async static handler: no collectstatic step, no sync middleware in front of the event stream. Put a
# CDN or reverse proxy in front for heavy traffic.
django_asgi_app = ASGIStaticFilesHandler(get_asgi_application())

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  (needs Django set up first)

from amodal_site.websocket_urls import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
