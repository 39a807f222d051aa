"""`/api/docs/`: the OpenAPI schema (`/api/schema/`) in Swagger UI, every file served by this server
(drf-spectacular-sidecar's copy of swagger-ui-dist: no CDN, works offline).

The split view loads its start-up script from `/api/docs/?script` rather than inline, so the page runs
under the HTML pages' Content-Security-Policy (amodal_site.security), widened by one thing: Swagger UI's
stylesheet draws its icons as `data:` images.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework.request import Request
from rest_framework.response import Response

from amodal_site.security import CONTENT_SECURITY_POLICY, HEADER

API_DOCS_POLICY = CONTENT_SECURITY_POLICY.replace("img-src 'self'", "img-src 'self' data:")


class ApiDocsView(SpectacularSwaggerSplitView):
    template_name = "amodal_site/api_docs.html"
    title = "amodal runtime API"

    @extend_schema(exclude=True)
    def get(self, request: Request, *args, **kwargs) -> Response:
        response = super().get(request, *args, **kwargs)
        response[HEADER] = API_DOCS_POLICY
        return response
