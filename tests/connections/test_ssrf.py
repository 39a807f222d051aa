"""The URL of a call is always baseUrl + endpoint (SPEC §4): absolute URLs, host changes, `..`, encoded
tricks, control characters and redirects to another host or outside the base path are refused, and
neither the API nor the other ("evil") host receives anything."""

from __future__ import annotations

from urllib.parse import unquote

import pytest


@pytest.fixture
def agent(make_agent, api):
    return make_agent(
        {
            "app-api": {
                "baseUrl": api.url("/api"),
                "timeoutSeconds": 5,
                "auth": {"type": "bearer", "token": "ssrf-secret-token"},
            }
        }
    )


def call(request_tool, agent, endpoint, method="GET", **extra):
    return request_tool(agent, {"connection": "app-api", "method": method, "endpoint": endpoint, **extra})


ESCAPES = [
    "http://127.0.0.1:{evil}/x",
    "https://127.0.0.1:{evil}/x",
    "//127.0.0.1:{evil}/x",
    "///127.0.0.1:{evil}/x",
    "/..%2f..%2fadmin",
    "/%2e%2e/secret",
    "/%2E%2E/secret",
    "/.%2e/secret",
    "/%252e%252e/secret",  # double encoded
    "/a/../../b",
    "/..",
    "/./x",
    "@127.0.0.1:{evil}/x",
    "/@127.0.0.1:{evil}/x",
    "/x@127.0.0.1:{evil}",
    "/%40127.0.0.1:{evil}/x",
    "file:///etc/passwd",
    "/\\127.0.0.1:{evil}/x",
    "/%5c127.0.0.1:{evil}/x",
    "/%2f%2f127.0.0.1:{evil}/x",
    "/x//127.0.0.1:{evil}/y",
    "127.0.0.1:{evil}/x",
    "evil.com/x",
    "x",
    " /x",
    "\t/x",
    "/x\r\nHost: 127.0.0.1:{evil}",
    "/x\nX-Injected: 1",
    "/x%0d%0aX-Injected:%201",
    "/x\x00y",
    "/x%00y",
    "/x y",
    "/x#@127.0.0.1:{evil}",
    "/x?next=1#frag",
    "",
    # `;` path parameters: `..;` is `..` to Tomcat-style servers.
    "/..;/secret",
    "/..;x/secret",
    "/a/..;/..;/secret",
    "/.;x/secret",
    "/%2e%2e;/secret",
    "/..%3b/secret",
    "/..%253b/secret",
    "/%25252e%25252e/secret",  # encoded four times over
    "/%2525252525252e%2525252525252e/secret",  # more rounds than any API decodes: refused outright
]


@pytest.mark.parametrize("template", ESCAPES)
def test_escape_attempts_are_refused_and_nothing_is_sent(agent, api, evil, request_tool, template):
    endpoint = template.format(evil=evil.port)
    result = call(request_tool, agent, endpoint)
    assert result.is_error, f"{endpoint!r} was sent: {result.content}"
    assert "ssrf-secret-token" not in result.content
    assert api.received == []
    assert evil.received == []


@pytest.mark.parametrize("endpoint", [None, 42, ["/x"], {"path": "/x"}])
def test_an_endpoint_that_is_not_a_string_is_refused(agent, api, request_tool, endpoint):
    result = call(request_tool, agent, endpoint)
    assert result.is_error
    assert api.received == []


@pytest.mark.parametrize("method", ["CONNECT", "TRACE", "OPTIONS", "GET /x HTTP/1.1\r\nHost: evil"])
def test_unusual_methods_are_refused(agent, api, request_tool, method):
    result = call(request_tool, agent, "/x", method=method)
    assert result.is_error
    assert api.received == []


@pytest.mark.parametrize("template", ["/[::1]:{evil}/x", "/127.0.0.1:{evil}/x", "/:{evil}/x"])
def test_host_like_text_in_the_path_stays_a_path_on_the_base_host(agent, api, evil, request_tool, template):
    """Not refused: such text is an ordinary path segment, sent to the connection's own host."""
    endpoint = template.format(evil=evil.port)
    result = call(request_tool, agent, endpoint)
    assert evil.received == []
    if not result.is_error:
        assert unquote(api.only().path) == "/api" + endpoint


def test_the_base_path_prefix_is_kept_and_cannot_be_climbed_out_of(agent, api, request_tool):
    assert not call(request_tool, agent, "/users").is_error
    assert api.only().path == "/api/users"
    for endpoint in ["/../admin", "/%2e%2e/admin", "/users/../../admin"]:
        assert call(request_tool, agent, endpoint).is_error
    assert len(api.received) == 1


def test_a_trailing_slash_in_base_url_does_not_double_the_slash(make_agent, api, request_tool):
    agent = make_agent({"app-api": {"baseUrl": api.url("/api/v1/")}})
    assert not call(request_tool, agent, "/users").is_error
    assert api.only().path == "/api/v1/users"


# --- redirects ---------------------------------------------------------------------------------------


def test_a_redirect_to_another_host_is_not_followed(agent, api, evil, request_tool):
    api.redirect("/api/go", evil.url("/api/stolen"))
    result = call(request_tool, agent, "/go")
    assert result.is_error
    assert "redirect" in result.content.lower()
    assert [request.path for request in api.received] == ["/api/go"]
    assert evil.received == []


@pytest.mark.parametrize(
    "location",
    [
        "//127.0.0.1:{evil}/api/x",
        "http://127.0.0.1:{evil}/api/x",
        "https://127.0.0.1:{api}/api/x",  # another scheme
        "http://user:pw@127.0.0.1:{api}/api/x",  # credentials in the URL
        "http://localhost:{api}/api/x",  # another host name, even if it is the same machine
        "/admin",  # outside the base path
        "/api-admin/x",  # a sibling that only shares the prefix's text
        "/api/../admin",
        "file:///etc/passwd",
    ],
)
def test_redirects_that_leave_the_base_url_are_refused(agent, api, evil, request_tool, location):
    api.redirect("/api/go", location.format(evil=evil.port, api=api.port))
    result = call(request_tool, agent, "/go")
    assert result.is_error, result.content
    assert [request.path for request in api.received] == ["/api/go"]
    assert evil.received == []


@pytest.mark.parametrize("location", ["/api/landed", "landed", "http://127.0.0.1:{api}/api/landed"])
def test_a_redirect_under_the_base_url_is_followed(agent, api, request_tool, location):
    api.redirect("/api/go", location.format(api=api.port))
    api.route("/api/landed", body={"landed": True})
    result = call(request_tool, agent, "/go")
    assert not result.is_error, result.content
    assert '"landed": true' in result.content
    assert [request.path for request in api.received] == ["/api/go", "/api/landed"]
    assert api.received[1].header("Authorization") == "Bearer ssrf-secret-token"


def test_a_302_after_post_becomes_a_get_and_a_307_keeps_the_body(agent, api, request_tool):
    api.redirect("/api/form", "/api/done", status=302)
    api.redirect("/api/keep", "/api/done", status=307)
    assert not call(request_tool, agent, "/form", method="POST", data={"a": 1}).is_error
    assert not call(request_tool, agent, "/keep", method="POST", data={"b": 2}).is_error
    received = [(request.method, request.path, request.json) for request in api.received]
    assert received == [
        ("POST", "/api/form", {"a": 1}),
        ("GET", "/api/done", None),
        ("POST", "/api/keep", {"b": 2}),
        ("POST", "/api/done", {"b": 2}),
    ]


def test_a_redirect_loop_is_cut_off(agent, api, request_tool):
    api.redirect("/api/loop", "/api/loop")
    result = call(request_tool, agent, "/loop")
    assert result.is_error
    assert "redirect" in result.content.lower()
    assert 1 < len(api.received) <= 5


@pytest.mark.parametrize(
    "location",
    [
        "/api/v1/%2e%2e/escape",
        "/api/v1/%2E%2e/escape",
        "/api/v1/%2e%2E%2fescape",
        "/api/v1/%252e%252e/escape",  # double encoded
        "/api/v1/%25252e%25252e/escape",
        "/api/v1/..%2fescape",
        "/api/v1%2f..%2fescape",
        "/api/v1/x/%2e%2e/%2e%2e/escape",
        "/api/v1/..\\escape",
        "/api/v1\\..\\escape",
        "/api/v1/%5c..%5cescape",
        "/api/v1/%5C%2e%2e%5Cescape",
        "/api/v1/..;/escape",
        "/api/v1/..;x=1/escape",
        "/api/v1/%2e%2e;/escape",
        "/api/v1/..%3b/escape",
        "/api/v1/..%3B/escape",
        "/api/v1;x/../escape",
        "/api/v1/./%2e%2e/escape",
        "http://127.0.0.1:{api}/api/v1/%2e%2e/escape",
        "/api/v1/%2525252525252e%2525252525252e/escape",  # encoded more times than we decode
    ],
)
def test_encoded_dot_segment_redirects_cannot_leave_the_base_path(make_agent, api, evil, request_tool, location):
    agent = make_agent({"app-api": {"baseUrl": api.url("/api/v1"), "timeoutSeconds": 5}})
    api.redirect("/api/v1/go", location.format(api=api.port))
    result = call(request_tool, agent, "/go")
    assert result.is_error, result.content
    assert "redirect" in result.content.lower()
    assert [request.path for request in api.received] == ["/api/v1/go"]
    assert evil.received == []


@pytest.mark.parametrize(
    ("location", "landed"),
    [
        # The HTTP client decodes unreserved characters (%2e, %6C) before sending.
        ("/api/v1/a/%2e%2e/landed", "/api/v1/a/../landed"),  # the API resolves it to /api/v1/landed: inside
        ("/api/v1/landed;jsessionid=1", "/api/v1/landed;jsessionid=1"),
        ("/api/v1/%6Canded", "/api/v1/landed"),
    ],
)
def test_redirects_that_resolve_inside_the_base_path_are_followed(make_agent, api, request_tool, location, landed):
    agent = make_agent({"app-api": {"baseUrl": api.url("/api/v1"), "timeoutSeconds": 5}})
    api.redirect("/api/v1/go", location)
    result = call(request_tool, agent, "/go")
    assert not result.is_error, result.content
    assert [request.path for request in api.received] == ["/api/v1/go", landed]
