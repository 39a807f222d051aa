"""Building and sending one call to a connection: the URL can only ever be `baseUrl` + endpoint.

Everything here is pure or does plain HTTP with `requests` (the tool runs it in a worker thread).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urljoin, urlsplit

import requests

from connections.specs import AuthSpec, ConnectionSpec, InjectionRule

MAX_BODY_CHARS = 20_000
MAX_REDIRECTS = 3
METHODS_WITH_BODY = {"POST", "PUT", "PATCH"}
MUTATING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ALLOWED_METHODS = {"GET", "HEAD", *MUTATING_METHODS}
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
FORBIDDEN_IN_ENDPOINT = re.compile(r"[\\@\s\x00-\x1f\x7f#]")


class CallRefused(Exception):
    """The call is not allowed; nothing was sent. The message is safe to show to the model."""


@dataclass
class OutboundCall:
    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    secrets: list[str] = field(default_factory=list)  # resolved values to scrub from anything shown


def check_endpoint(endpoint: object) -> str:
    """An endpoint is a path below baseUrl: refuse anything that could change the host or climb out."""
    if not isinstance(endpoint, str) or not endpoint:
        raise CallRefused("endpoint must be a path such as /transactions.")
    if not endpoint.startswith("/") or endpoint.startswith("//"):
        raise CallRefused("endpoint must be a path starting with a single '/', not a URL.")
    decoded = endpoint
    for _ in range(3):  # catch %2e%2e and double encoding
        decoded = unquote(decoded)
    path = decoded.split("?", 1)[0]
    if FORBIDDEN_IN_ENDPOINT.search(endpoint) or FORBIDDEN_IN_ENDPOINT.search(decoded):
        raise CallRefused("endpoint contains characters that are not allowed (\\, @, #, spaces or control characters).")
    if "://" in decoded or path.startswith("//") or "//" in path:
        raise CallRefused("endpoint must stay on the connection's host.")
    if any(segment in ("..", ".") for segment in path.split("/")):
        raise CallRefused("endpoint must not contain '.' or '..' segments.")
    return endpoint


def same_origin(url: str, base_url: str) -> bool:
    target, base = urlsplit(url), urlsplit(base_url)
    base_path = base.path.rstrip("/") + "/"
    return (
        target.scheme == base.scheme
        and target.hostname == base.hostname
        and (target.port or default_port(target.scheme)) == (base.port or default_port(base.scheme))
        and target.username is None
        and (target.path.rstrip("/") + "/").startswith(base_path)
    )


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def checked_value(value: str, where: str) -> str:
    if "\r" in value or "\n" in value:
        raise CallRefused(f"The value for {where} contains a line break and was refused.")
    return value


def build_call(
    *,
    spec: ConnectionSpec,
    method: str,
    endpoint: str,
    params: dict[str, Any] | None,
    data: Any,
    scope_context: dict[str, str],
) -> OutboundCall:
    """Apply context injection (overriding the model's values) and produce the URL; no auth yet."""
    method = method.upper()
    if method not in ALLOWED_METHODS:
        raise CallRefused(f"method must be one of {', '.join(sorted(ALLOWED_METHODS))}.")
    check_endpoint(endpoint)
    path, _, query = endpoint.partition("?")
    query_params = {key: value for key, value in parse_qsl(query, keep_blank_values=True)}
    query_params.update({str(k): stringify(v) for k, v in (params or {}).items()})
    headers: dict[str, str] = {}
    body = data if method in METHODS_WITH_BODY else None
    for rule in spec.context_injection:
        value = scope_context.get(rule.key)
        if value is None:
            if rule.required:
                raise CallRefused(
                    f"The scope context has no '{rule.key}', which connection {spec.name} requires; "
                    "the call was not sent."
                )
            continue
        value = checked_value(value, f"context key '{rule.key}'")
        path, body = inject(rule, value, path, query_params, headers, body, method)
    unfilled = PLACEHOLDER.findall(path)
    if unfilled:
        raise CallRefused(f"endpoint still has placeholders: {', '.join(unfilled)}.")
    url = spec.base_url.rstrip("/") + path
    if not same_origin(url, spec.base_url):
        raise CallRefused("endpoint must stay under the connection's base URL.")
    return OutboundCall(method, url, query_params, headers, body)


def inject(
    rule: InjectionRule, value: str, path: str, query: dict[str, str], headers: dict[str, str], body: Any, method: str
) -> tuple[str, Any]:
    if rule.location == "header":
        headers[rule.field] = value
    elif rule.location == "query":
        query[rule.field] = value
    elif rule.location == "path":
        path = path.replace("{" + rule.field + "}", quote(value, safe=""))
    elif rule.location == "body" and method in METHODS_WITH_BODY:
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise CallRefused("data must be a JSON object for this connection (a field is injected into it).")
        body = {**body, rule.field: value}
    return path, body


def stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def apply_auth(call: OutboundCall, auth: AuthSpec | None, resolve) -> None:
    """Add the connection's credentials; `resolve` turns a reference into its value."""
    if auth is None:
        return

    def secret(reference: str | None, where: str) -> str:
        value = checked_value(resolve(reference or ""), where)
        call.secrets.append(value)
        return value

    if auth.type == "bearer":
        token = secret(auth.token, "auth.token")
        call.headers[auth.header or "Authorization"] = f"{auth.prefix or 'Bearer'} {token}"
    elif auth.type in ("api_key", "header"):
        call.headers[auth.header or "X-API-Key"] = secret(auth.token, "auth.token")
    elif auth.type == "basic":
        pair = f"{secret(auth.username, 'auth.username')}:{secret(auth.password, 'auth.password')}"
        encoded = base64.b64encode(pair.encode()).decode()
        call.secrets.append(encoded)
        call.headers["Authorization"] = f"Basic {encoded}"
    elif auth.type == "query":
        call.params[auth.param or "api_key"] = secret(auth.token, "auth.token")


@dataclass
class CallResult:
    status: int
    data: Any


def send(call: OutboundCall, *, base_url: str, timeout: float, session: requests.Session | None = None) -> CallResult:
    """Send the call; follow redirects only while they stay under baseUrl."""
    http = session or requests.Session()
    url = call.url
    method = call.method
    params: dict[str, str] | None = call.params
    body = call.json_body
    for _ in range(MAX_REDIRECTS + 1):
        response = http.request(
            method, url, params=params, headers=call.headers,
            json=body if body is not None else None, timeout=timeout, allow_redirects=False,
        )
        if not response.is_redirect:
            return CallResult(response.status_code, response_data(response))
        target = urljoin(response.url, response.headers.get("Location", ""))
        if not same_origin(target, base_url):
            raise CallRefused("The API redirected to another host or path; the redirect was not followed.")
        url, params = target, None
        if response.status_code in (301, 302, 303) and method != "HEAD":
            method, body = "GET", None  # as browsers do; 307 and 308 keep the method and body
    raise CallRefused(f"The API redirected more than {MAX_REDIRECTS} times.")


def response_data(response: requests.Response) -> Any:
    if "json" in response.headers.get("Content-Type", ""):
        try:
            return response.json()
        except ValueError:
            pass
    return response.text


def shaped_result(result: CallResult, secrets: list[str]) -> str:
    """`{status, data}` as JSON text for the model: secrets scrubbed, long bodies cut head + tail."""
    text = json.dumps({"status": result.status, "data": result.data}, ensure_ascii=False, default=str)
    for value in secrets:
        if len(value) >= 4:
            text = text.replace(value, "[REDACTED]")
    if len(text) <= MAX_BODY_CHARS:
        return text
    half = MAX_BODY_CHARS // 2
    return f"{text[:half]}\n…[{len(text) - 2 * half} characters cut]…\n{text[-half:]}"
