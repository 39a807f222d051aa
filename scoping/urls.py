"""Routes under /api/: a scope's label, metadata and erase (scoping.api.ScopeDetail), its export (ScopeExport).

The scope id is the rest of the path, whatever it holds (ids are opaque and may contain `/`), and may be
empty: `/api/scopes/` is the global scope, whose id is "". The server sees the path decoded (`%2F` is `/`), so a
path ending in `/export` is always the export of the id before it: a scope whose own id ends in "/export" is
managed in admin and with the commands, not over HTTP.
"""

from django.urls import re_path

from scoping import api

urlpatterns = [
    re_path(r"^scopes/(?P<scope_id>[\s\S]*)/export\Z", api.ScopeExport.as_view(), name="scope-export"),
    re_path(r"^scopes/(?P<scope_id>[\s\S]*)\Z", api.ScopeDetail.as_view(), name="scope-details"),
]
