"""One scope policy for every JSON API view: no view authenticates or resolves a scope its own way."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.views import SpectacularAPIView
from rest_framework.views import APIView

from amodal_site.api_docs import ApiDocsView
from scoping import authentication
from scoping.api import ScopedAPIView
from scoping.authentication import BearerAuthentication
from scoping.permissions import ScopePolicy

# The OpenAPI schema and its docs page are public (they describe the API, they reach no scope).
PUBLIC_VIEWS = {SpectacularAPIView, ApiDocsView}


def api_views(patterns=None, prefix=""):
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from api_views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "cls", None)
            if view_class is not None and issubclass(view_class, APIView):
                yield prefix + str(pattern.pattern), view_class


def test_there_are_api_views_to_check():
    assert len(list(api_views())) >= 6


@pytest.mark.parametrize(("route", "view_class"), list(api_views()), ids=lambda value: str(value))
def test_every_api_view_uses_the_scope_policy(route, view_class):
    if view_class in PUBLIC_VIEWS:
        return
    assert issubclass(view_class, ScopedAPIView), route
    assert view_class.authentication_classes == [BearerAuthentication], route
    assert ScopePolicy in view_class.permission_classes, route


def test_without_a_source_for_require_scope_every_check_fails_loudly(monkeypatch):
    monkeypatch.setattr(authentication, "_scope_required_source", None)
    with pytest.raises(ImproperlyConfigured):
        authentication.scope_is_required()
