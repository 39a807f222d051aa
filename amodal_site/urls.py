from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from amodal_site.api_docs import ApiDocsView
from amodal_site.health import health
from core.event_schemas import event_schema_view
from core.folder_schemas import folder_schema_view

urlpatterns = [
    path("health", health, name="health"),
    path("admin/", admin.site.urls),
    path("studio/", include("studio.urls")),
    path("api/", include("scoping.urls")),
    path("api/", include("connections.urls")),
    path("api/", include("stores.urls")),
    path("api/", include("memory.urls")),
    path("widget/", include("agents.widget_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", ApiDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/schemas/agent-folder/<str:name>.schema.json", folder_schema_view, name="agent-folder-schema"),
    path("api/schemas/events.schema.json", event_schema_view, name="events-schema"),
    path("api/schemas/events/<str:type>.schema.json", event_schema_view, name="event-schema"),
    path("", include("agents.urls")),
]

if settings.AMODAL_DEMO_API:
    urlpatterns.append(path("demo/finance-api/", include("examples.finance_app.urls")))
