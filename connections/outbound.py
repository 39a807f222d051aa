"""Building and sending one call to a connection: the URL can only ever be `baseUrl` + endpoint.

Everything here is pure or does plain HTTP with `requests` (the tool runs it in a worker thread).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urljoin, urlsplit

import requests
from urllib3.exceptions import ReadTimeoutError

from connections.specs import AuthSpec, ConnectionSpec, InjectionRule

MAX_BODY_CHARS = 20_000
MAX_RESPONSE_BYTES = 5_000_000  # read no more of an answer than this (the model sees 20 000 chars of it)
READ_CHUNK_BYTES = 64 * 1024
# Loggers of the HTTP client stack that may write a request's URL (and so a query auth token).
HTTP_CLIENT_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.poolmanager",
    "urllib3.response",
    "urllib3.util.retry",
    "requests",
)
MAX_REDIRECTS = 3
METHODS_WITH_BODY = {"POST", "PUT", "PATCH"}
MUTATING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
ALLOWED_METHODS = {"GET", "HEAD", *MUTATING_METHODS}
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.-]+)\}")
FORBIDDEN_IN_ENDPOINT = re.compile(r"[\\@\s\x00-\x1f\x7f#]")
# C0 and C1 control characters (NUL, VT, NEL, ...), DEL, and the Unicode line and paragraph separators.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_DECODE_ROUNDS = 5


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
    forms = decoded_forms(endpoint)  # catches %2e%2e and double encoding
    if any(FORBIDDEN_IN_ENDPOINT.search(form) for form in forms):
        raise CallRefused("endpoint contains characters that are not allowed (\\, @, #, spaces or control characters).")
    paths = [form.split("?", 1)[0] for form in forms]
    if any("://" in form for form in forms) or any("//" in path for path in paths):
        raise CallRefused("endpoint must stay on the connection's host.")
    if has_dot_segment(endpoint.split("?", 1)[0]):
        raise CallRefused("endpoint must not contain '.' or '..' segments.")
    return endpoint


def decoded_forms(path: str) -> list[str]:
    """`path` as written, then after each round of percent-decoding until nothing changes: a proxy may
    decode once and the API again, so every form must be safe. Refused when still encoded after
    MAX_DECODE_ROUNDS rounds."""
    forms = [path]
    for _ in range(MAX_DECODE_ROUNDS):
        decoded = unquote(forms[-1])
        if decoded == forms[-1]:
            return forms
        forms.append(decoded)
    raise CallRefused("The path is percent-encoded too many times over and was refused.")


def path_segments(path: str) -> list[str]:
    """The segments a lenient server sees: backslashes as slashes and `;` parameters dropped
    (`/a/..;x/b` is `/a/../b` to Tomcat and friends)."""
    return [segment.split(";", 1)[0] for segment in path.replace("\\", "/").split("/")]


def has_dot_segment(path: str) -> bool:
    return any(segment in (".", "..") for form in decoded_forms(path) for segment in path_segments(form))


def normalised_path(path: str) -> str:
    """`path` (one decoded form) as such a server resolves it: empty segments merged, `.` and `..`
    resolved (posixpath-style), no trailing slash."""
    resolved: list[str] = []
    for segment in path_segments(path):
        if segment == "..":
            if resolved:
                resolved.pop()
        elif segment not in ("", "."):
            resolved.append(segment)
    return "/" + "/".join(resolved)


def stays_under(path: str, base_path: str) -> bool:
    """Whether `path` is `base_path` or below it in every decoded form, as written and normalised (each
    form compared with the base decoded as many times)."""
    try:
        forms, base_forms = decoded_forms(path), decoded_forms(base_path)
    except CallRefused:
        return False
    for depth, form in enumerate(forms):
        base = base_forms[min(depth, len(base_forms) - 1)]
        for candidate, prefix in ((form, base), (normalised_path(form), normalised_path(base))):
            if not (candidate.rstrip("/") + "/").startswith(prefix.rstrip("/") + "/"):
                return False
    return True


def same_origin(url: str, base_url: str) -> bool:
    target, base = urlsplit(url), urlsplit(base_url)
    return (
        target.scheme == base.scheme
        and target.hostname == base.hostname
        and (target.port or default_port(target.scheme)) == (base.port or default_port(base.scheme))
        and target.username is None
        and stays_under(target.path, base.path)
    )


def default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def checked_value(value: str, where: str, *, header: bool = False) -> str:
    """Refuse what could split or smuggle a header (or confuse the API): control characters anywhere,
    and in a header anything http.client cannot encode (it sends Latin-1). Never quotes the value."""
    if CONTROL_CHARACTER.search(value):
        raise CallRefused(f"The value for {where} contains a line break or another control character and was refused.")
    if header and not value.isascii():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise CallRefused(
                f"The value for {where} has characters that an HTTP header cannot carry (only Latin-1) and was refused."
            )
    return value


def build_call(
    *,
    spec: ConnectionSpec,
    method: str,
    endpoint: object,
    params: dict[str, Any] | None,
    data: Any,
    scope_context: dict[str, str],
) -> OutboundCall:
    """Apply context injection (overriding the model's values) and produce the URL; no auth yet."""
    method = method.upper()
    if method not in ALLOWED_METHODS:
        raise CallRefused(f"method must be one of {', '.join(sorted(ALLOWED_METHODS))}.")
    path, _, query = check_endpoint(endpoint).partition("?")
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
        value = checked_value(value, f"context key '{rule.key}'", header=rule.location == "header")
        path, body = inject(rule, value, path, query_params, headers, body, method)
    unfilled = PLACEHOLDER.findall(path)
    if unfilled:
        raise CallRefused(f"endpoint still has placeholders: {', '.join(unfilled)}.")
    if has_dot_segment(path):
        # A path value of "." or ".." (or "..;x", encoded or not) would be resolved by the HTTP client or
        # the API and climb out of baseUrl.
        raise CallRefused("a context value put into the endpoint path is a '.' or '..' segment and was refused.")
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

    def secret(reference: str | None, where: str, *, header: bool = True) -> str:
        value = checked_value(resolve(reference or ""), where, header=header)
        call.secrets.append(value)
        return value

    if auth.type == "bearer":
        token = secret(auth.token, "auth.token")
        prefix = checked_value(auth.prefix or "Bearer", "auth.prefix", header=True)
        call.headers[auth.header or "Authorization"] = f"{prefix} {token}"
    elif auth.type in ("api_key", "header"):
        call.headers[auth.header or "X-API-Key"] = secret(auth.token, "auth.token")
    elif auth.type == "basic":
        # base64 carries any text, so only control characters are refused here.
        username = secret(auth.username, "auth.username", header=False)
        pair = f"{username}:{secret(auth.password, 'auth.password', header=False)}"
        encoded = base64.b64encode(pair.encode()).decode()
        call.secrets.append(encoded)
        call.headers["Authorization"] = f"Basic {encoded}"
    elif auth.type == "query":
        call.params[auth.param or "api_key"] = secret(auth.token, "auth.token", header=False)


@dataclass
class CallResult:
    status: int
    data: Any


class RedactSecretsInFlight(logging.Filter):
    """Scrub the secrets of the call being sent from what the HTTP client logs: urllib3 logs every
    request line at DEBUG, query string (and so a `query` auth token) included."""

    def filter(self, record: logging.LogRecord) -> bool:
        forms = _secrets_in_flight.get()
        if forms:
            message = record.getMessage()
            for form in forms:
                message = message.replace(form, "[REDACTED]")
            record.msg, record.args = message, None
        return True


_secrets_in_flight: ContextVar[tuple[str, ...]] = ContextVar("connection_secrets_in_flight", default=())
_redact_filter = RedactSecretsInFlight()
for _name in HTTP_CLIENT_LOGGERS:
    logging.getLogger(_name).addFilter(_redact_filter)


def send(call: OutboundCall, *, base_url: str, timeout: float, session: requests.Session | None = None) -> CallResult:
    """Send the call; follow redirects only while they stay under baseUrl."""
    token = _secrets_in_flight.set(tuple(secret_forms(call.secrets)))
    try:
        return _send(call, base_url=base_url, timeout=timeout, session=session)
    finally:
        _secrets_in_flight.reset(token)


def _send(call: OutboundCall, *, base_url: str, timeout: float, session: requests.Session | None) -> CallResult:
    # `timeout` bounds each network read (requests' meaning) and, through the deadline, the whole answer:
    # a body that trickles in forever cannot hold the call (and its thread) beyond it.
    deadline = time.monotonic() + timeout
    http = session or requests.Session()
    url = call.url
    method = call.method
    params: dict[str, str] | None = call.params
    body = call.json_body
    try:
        for _ in range(MAX_REDIRECTS + 1):
            response = http.request(
                method,
                url,
                params=params,
                headers=call.headers,
                json=body if body is not None else None,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            )
            if not response.is_redirect:
                content, truncated = read_capped(response, deadline)
                return CallResult(response.status_code, response_data(response, content, truncated))
            response.close()
            target = urljoin(response.url, response.headers.get("Location", ""))
            if not same_origin(target, base_url):
                raise CallRefused("The API redirected to another host or path; the redirect was not followed.")
            url, params = target, None
            if response.status_code in (301, 302, 303) and method != "HEAD":
                method, body = "GET", None  # as browsers do; 307 and 308 keep the method and body
        raise CallRefused(f"The API redirected more than {MAX_REDIRECTS} times.")
    finally:
        if session is None:
            http.close()


def read_capped(response: requests.Response, deadline: float) -> tuple[bytes, bool]:
    """The body, at most MAX_RESPONSE_BYTES of it (and whether it was cut); requests.Timeout when the
    read stalls or the deadline passes."""
    content = bytearray()
    try:
        for chunk in response.iter_content(READ_CHUNK_BYTES):
            content += chunk
            if len(content) > MAX_RESPONSE_BYTES:
                return bytes(content[:MAX_RESPONSE_BYTES]), True
            if time.monotonic() > deadline:
                raise requests.Timeout("The answer did not arrive in time.")
    except requests.ConnectionError as exc:
        # requests reports a read timeout in the middle of a body as a ConnectionError.
        if exc.args and isinstance(exc.args[0], ReadTimeoutError):
            raise requests.Timeout("The answer stalled.") from exc
        raise
    finally:
        response.close()
    return bytes(content), False


def response_data(response: requests.Response, content: bytes, truncated: bool = False) -> Any:
    if not truncated and "json" in response.headers.get("Content-Type", ""):
        try:
            return json.loads(content)
        except ValueError:
            pass
    try:
        text = content.decode(response.encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = content.decode("utf-8", errors="replace")
    if truncated:
        text += f"\n…[the answer was cut after {MAX_RESPONSE_BYTES} bytes]"
    return text


def secret_forms(secrets: list[str]) -> list[str]:
    """Each secret as it may come back in an answer that echoes the request: as is, JSON-escaped (a
    quote or backslash in a header echoed inside JSON) and URL-encoded (a query auth token echoed in a
    URL). Longest first, so a secret inside another is not half-replaced."""
    forms: set[str] = set()
    for value in secrets:
        if len(value) < 4:
            continue
        forms.update(
            {
                value,
                json.dumps(value, ensure_ascii=False)[1:-1],
                json.dumps(value)[1:-1],
                quote(value, safe=""),
                quote_plus(value),
                quote(value),
            }
        )
    return sorted(forms, key=len, reverse=True)


def shaped_result(result: CallResult, secrets: list[str]) -> str:
    """`{status, data}` as JSON text for the model: secrets scrubbed, long bodies cut head + tail."""
    text = json.dumps({"status": result.status, "data": result.data}, ensure_ascii=False, default=str)
    for form in secret_forms(secrets):
        text = text.replace(form, "[REDACTED]")
    if len(text) <= MAX_BODY_CHARS:
        return text
    half = MAX_BODY_CHARS // 2
    return f"{text[:half]}\n…[{len(text) - 2 * half} characters cut]…\n{text[-half:]}"
