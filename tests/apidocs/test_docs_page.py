"""/api/docs/: Swagger UI served by this server alone (no CDN), under a Content-Security-Policy without
inline script or style."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

from amodal_site.security import CONTENT_SECURITY_POLICY


@pytest.fixture
def page(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    return response


def test_the_docs_page_loads_every_file_from_this_server(page):
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(sources) == 6  # favicon, two stylesheets, two Swagger UI scripts, the start-up script
    for source in sources:
        assert source.startswith("/"), f"{source} is not from this server"
        assert not source.startswith("//"), source
    statics = [source.removeprefix("/static/") for source in sources if source.startswith("/static/")]
    assert len(statics) == 5
    for path in statics:
        assert finders.find(path), f"{path} is not a static file of this project"
    assert "/api/docs/?script=" in sources


def test_the_docs_page_has_no_inline_script_or_style(page):
    html = page.content.decode()
    assert "<style" not in html
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    policy = page["Content-Security-Policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "img-src 'self' data:" in policy  # Swagger UI's icons
    # Everything else as on every other page.
    assert policy == CONTENT_SECURITY_POLICY.replace("img-src 'self'", "img-src 'self' data:")


def test_the_start_up_script_points_at_the_schema(client):
    response = client.get("/api/docs/?script=")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    script = response.content.decode()
    assert 'url: "\\u002Fapi\\u002Fschema\\u002F"' in script or 'url: "/api/schema/"' in script
    assert '"validatorUrl": null' in script  # no call to validator.swagger.io
