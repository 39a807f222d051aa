"""Connection specs: `connections/<name>/spec.json` and its optional `access.json`, parsed and validated.

Values under `auth` are credential references (`env:NAME`, `scope:KEY` or a literal) kept as written:
they are resolved for each call, in the caller's scope, so a secret never sits in the loaded config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from core.folder_problems import (
    BOOLEAN,
    HTTP_URL,
    NON_EMPTY_STRING,
    OBJECT,
    POSITIVE_NUMBER,
    SCOPE_PREFIX,
    STRING,
    ConfigProblem,
    FileChecker,
    describe,
    field_path,
)

AUTH_TYPES = ("bearer", "api_key", "basic", "header", "query")
# The auth fields each type needs; `header` and `prefix` have defaults where a type has a usual one.
AUTH_REQUIRED_FIELDS = {
    "bearer": ("token",),
    "api_key": ("token",),
    "basic": ("username", "password"),
    "header": ("header", "token"),
    "query": ("param", "token"),
}
AUTH_FIELDS = ("token", "header", "prefix", "param", "username", "password")
AUTH_DEFAULT_HEADERS = {"bearer": "Authorization", "api_key": "X-API-Key"}
DEFAULT_BEARER_PREFIX = "Bearer"
INJECTION_LOCATIONS = ("header", "query", "path", "body")
ACCESS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
DEFAULT_TIMEOUT_SECONDS = 30.0
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token


@dataclass(frozen=True)
class AuthSpec:
    type: str  # bearer | api_key | basic | header | query
    token: str | None
    header: str | None
    prefix: str | None  # bearer only: the word before the token ("Bearer")
    param: str | None
    username: str | None
    password: str | None


@dataclass(frozen=True)
class InjectionRule:
    key: str  # the scope context key
    location: str  # header | query | path | body
    field: str  # header name, query parameter, `{placeholder}` in the endpoint, or JSON body field
    required: bool


@dataclass(frozen=True)
class AccessRule:
    method: str  # upper case
    path_pattern: str  # may contain `{placeholders}`
    confirm: bool | Literal["never"]
    reason: str


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    base_url: str  # without a trailing slash: the URL of a call is base_url + endpoint
    auth: AuthSpec | None
    context_injection: tuple[InjectionRule, ...]
    timeout_seconds: float
    access_rules: tuple[AccessRule, ...]
    description: str


def parse_connection(
    name: str,
    spec_data: Any,
    access_data: Any | None,
    problems: list[ConfigProblem],
    spec_file: str,
    access_file: str,
) -> ConnectionSpec | None:
    """The connection, or None when its spec or access rules have problems (appended to `problems`)."""
    before = len(problems)
    checker = FileChecker(spec_file, problems)
    checker.kebab_name(name, "", "connection folder name", "app-api")
    if checker.check(spec_data, "", OBJECT) is None:
        return None
    spec = {key: checker.resolve_env(value, key, keep_references=key == "auth") for key, value in spec_data.items()}
    base_url = _parse_base_url(checker, spec)
    auth = _parse_auth(checker, spec.get("auth"))
    injection = _parse_context_injection(checker, spec.get("contextInjection"))
    timeout = checker.get(spec, "timeoutSeconds", POSITIVE_NUMBER, default=DEFAULT_TIMEOUT_SECONDS)
    description = checker.get(spec, "description", STRING, default="")
    access_rules = () if access_data is None else _parse_access(FileChecker(access_file, problems), access_data)
    if len(problems) > before:
        return None
    return ConnectionSpec(
        name=name,
        base_url=base_url,
        auth=auth,
        context_injection=injection,
        timeout_seconds=float(timeout),
        access_rules=access_rules,
        description=description,
    )


def _parse_base_url(checker: FileChecker, spec: dict[str, Any]) -> str | None:
    url = checker.get(spec, "baseUrl", HTTP_URL, required=True)
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        checker.add("baseUrl", "must not contain credentials; put them in auth (e.g. env:API_TOKEN)")
    if parts.query or parts.fragment:
        checker.add("baseUrl", "must not contain a query string or fragment")
    return url.rstrip("/")


def _parse_auth(checker: FileChecker, value: Any) -> AuthSpec | None:
    if value is None or checker.check(value, "auth", OBJECT) is None:
        return None
    auth_type = checker.choice(value, "type", AUTH_TYPES, what="auth type", parent="auth", required=True)
    required_keys = AUTH_REQUIRED_FIELDS.get(auth_type or "", ())
    fields: dict[str, str | None] = {}
    for key in AUTH_FIELDS:
        field = field_path("auth", key)
        if key in required_keys and value.get(key) is None:
            checker.add(field, f"is required for auth type {auth_type!r}")
        fields[key] = checker.get(value, key, NON_EMPTY_STRING if key in required_keys else STRING, parent="auth")
        if fields[key] is not None:
            _check_credential_reference(checker, fields[key], field)
    if auth_type is None:
        return None
    header = fields["header"] or AUTH_DEFAULT_HEADERS.get(auth_type)
    if header is not None and not HEADER_NAME_RE.match(header):
        checker.add("auth.header", f"{header!r} is not a valid HTTP header name")
    prefix = fields["prefix"]
    if auth_type == "bearer" and prefix is None:
        prefix = DEFAULT_BEARER_PREFIX
    return AuthSpec(type=auth_type, **{**fields, "header": header, "prefix": prefix})


def _check_credential_reference(checker: FileChecker, reference: str, field: str) -> None:
    """`scope:KEY` needs a key; `env:NAME` was already checked (unset variables fail at load time)."""
    if reference.startswith(SCOPE_PREFIX) and not reference[len(SCOPE_PREFIX) :].strip():
        checker.add(field, f"{reference!r} names no credential key (expected scope:KEY)")
    if "\r" in reference or "\n" in reference:
        checker.add(field, "must not contain line breaks")


def _parse_context_injection(checker: FileChecker, value: Any) -> tuple[InjectionRule, ...]:
    if value is None or checker.check(value, "contextInjection", OBJECT) is None:
        return ()
    rules = []
    for key, rule in value.items():
        parent = field_path("contextInjection", key)
        if not key.strip():
            checker.add(parent, "the scope context key must not be empty")
        if checker.check(rule, parent, OBJECT) is None:
            continue
        location = checker.choice(rule, "in", INJECTION_LOCATIONS, what="location", parent=parent, required=True)
        target = checker.get(rule, "field", NON_EMPTY_STRING, parent=parent, required=True)
        required = checker.get(rule, "required", BOOLEAN, parent=parent, default=False)
        if location == "header" and target is not None and not HEADER_NAME_RE.match(target):
            checker.add(field_path(parent, "field"), f"{target!r} is not a valid HTTP header name")
        if location is not None and target is not None:
            rules.append(InjectionRule(key=key, location=location, field=target, required=required))
    return tuple(rules)


def _parse_access(checker: FileChecker, data: Any) -> tuple[AccessRule, ...]:
    if checker.check(data, "", OBJECT) is None:
        return ()
    endpoints = checker.get(checker.resolve_env(data), "endpoints", OBJECT, required=True, default={})
    rules: dict[tuple[str, str], AccessRule] = {}
    for endpoint, rule in endpoints.items():
        parent = field_path("endpoints", endpoint)
        parsed = _parse_access_rule(checker, endpoint, rule, parent)
        if parsed is None:
            continue
        identity = (parsed.method, parsed.path_pattern)
        if identity in rules:
            checker.add(parent, f"duplicates the rule for {parsed.method} {parsed.path_pattern}")
        rules[identity] = parsed
    return tuple(rules.values())


def _parse_access_rule(checker: FileChecker, endpoint: str, rule: Any, parent: str) -> AccessRule | None:
    method, _, path = endpoint.strip().partition(" ")
    method, path = method.upper(), path.strip()
    valid_endpoint = True
    if method not in ACCESS_METHODS:
        checker.add(parent, f"unknown HTTP method {method!r}; expected one of {', '.join(ACCESS_METHODS)}")
        valid_endpoint = False
    if not path.startswith("/"):
        checker.add(parent, "expected 'METHOD /path', e.g. 'POST /transfers' (the path starts with '/')")
        valid_endpoint = False
    if checker.check(rule, parent, OBJECT) is None:
        return None
    confirm = _parse_confirm(checker, rule, parent)
    reason = checker.get(rule, "reason", STRING, parent=parent, default="")
    if not valid_endpoint or confirm is None:
        return None
    return AccessRule(method=method, path_pattern=path, confirm=confirm, reason=reason)


def _parse_confirm(checker: FileChecker, rule: dict[str, Any], parent: str) -> bool | Literal["never"] | None:
    field = field_path(parent, "confirm")
    value = rule.get("confirm")
    if isinstance(value, bool) or value == "never":
        return value
    if value is None:
        checker.add(field, 'is required (true, false or "never")')
    else:
        checker.add(field, f'expected true, false or "never", got {describe(value)}')
    return None


SECRET_AUTH_FIELDS = ("token", "username", "password")  # the auth values resolved as references per call


def scope_credential_keys(spec: ConnectionSpec) -> tuple[str, ...]:
    """The KEYs of the `scope:KEY` references the connection's auth needs, in field order."""
    if spec.auth is None:
        return ()
    references = (getattr(spec.auth, name) or "" for name in SECRET_AUTH_FIELDS)
    keys = [reference[len(SCOPE_PREFIX) :] for reference in references if reference.startswith(SCOPE_PREFIX)]
    return tuple(dict.fromkeys(keys))
