"""Routes under /api/: a scope's label and metadata (scoping.api.ScopeDetail).

The scope id is the rest of the path, whatever it holds (ids are opaque and may contain `/`), and may be
empty: `/api/scopes/` is the global scope, whose id is "".
"""

from django.urls import re_path

from scoping import api

urlpatterns = [
    re_path(r"^scopes/(?P<scope_id>[\s\S]*)\Z", api.ScopeDetail.as_view(), name="scope-details"),
]
