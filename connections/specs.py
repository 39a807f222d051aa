"""Connections in the agent folder: `connections/<name>/spec.json`, its optional `access.json`, and the
development credentials of `.amodal/scopes.json`.

The files are pydantic models (core.folder_models: strict types, the project's messages, a JSON
Schema each); the loaded connection is a `ConnectionSpec`, named the way the runtime uses it. Callers
reach the loaded values through `connections_of(agent)` and `dev_scopes_of(agent)` (typed: see
core.agent_folder for why accessors rather than attributes).

Values under `auth` are credential references (`env:NAME`, `scope:KEY` or a literal) kept as written:
they are resolved for each call, in the caller's scope, so a secret never sits in the loaded config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, RootModel, model_validator
from pydantic_core import PydanticCustomError

from core.agent_folder import AgentFolder, FileKind, FolderPart, FolderReader
from core.folder_models import (
    KEBAB_NAME_RE,
    SCOPE_PREFIX,
    Boolean,
    Choice,
    Expect,
    FolderModel,
    HttpUrl,
    Loc,
    NonEmptyString,
    PositiveNumber,
    String,
    bool_from_text,
    raise_problems,
)
from core.folder_problems import describe
from scoping.context import MAX_SCOPE_ID_LENGTH, InvalidScope, validate_scope_id

AuthType = Literal["bearer", "api_key", "basic", "header", "query"]
# The auth fields each type needs; `header` and `prefix` have defaults where a type has a usual one.
AUTH_REQUIRED_FIELDS = {
    "bearer": ("token",),
    "api_key": ("token",),
    "basic": ("username", "password"),
    "header": ("header", "token"),
    "query": ("param", "token"),
}
AUTH_DEFAULT_HEADERS = {"bearer": "Authorization", "api_key": "X-API-Key"}
DEFAULT_BEARER_PREFIX = "Bearer"
ACCESS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# For editors (JSON Schema has no case-insensitive flag): what the loader reads, less mixed-case methods.
ENDPOINT_PATTERN = r"^\s*(?:" + "|".join(f"{m}|{m.lower()}" for m in ACCESS_METHODS) + r") +/"
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
DEV_SCOPES_FILE = ".amodal/scopes.json"


# --- The files ----------------------------------------------------------------------------------------


def _credential_reference(reference: str) -> str:
    """`scope:KEY` needs a key; `env:NAME` was already checked (unset variables fail at load time)."""
    problems: list[tuple[Loc, str]] = []
    if reference.startswith(SCOPE_PREFIX) and not reference[len(SCOPE_PREFIX) :].strip():
        problems.append(((), f"{reference!r} names no credential key (expected scope:KEY)"))
    if "\r" in reference or "\n" in reference:
        problems.append(((), "must not contain line breaks"))
    raise_problems(problems, reference)
    return reference


Credential = Annotated[str, Expect("a string", env_schema=False), AfterValidator(_credential_reference)]


class Auth(FolderModel):
    """How the runtime authenticates to the API. Every value is a credential reference: `env:NAME` (the
    server's environment), `scope:KEY` (the calling scope's credential KEY) or the literal value."""

    type: Annotated[AuthType, Choice("auth type")] = Field(
        description="bearer: `Authorization: Bearer <token>`; api_key: header `header` (X-API-Key) = token; "
        "basic: username + password; header: header `header` = token; query: query parameter `param` = token."
    )
    token: Credential | None = Field(None, description="The secret (every type but basic).")
    header: Credential | None = Field(None, description="The header name (bearer, api_key, header).")
    prefix: Credential | None = Field(None, description="bearer only: the word before the token (Bearer).")
    param: Credential | None = Field(None, description="query only: the query parameter's name.")
    username: Credential | None = Field(None, description="basic only.")
    password: Credential | None = Field(None, description="basic only.")

    @model_validator(mode="after")
    def _fields_of_the_type(self) -> Auth:
        problems: list[tuple[Loc, str]] = []
        for key in AUTH_REQUIRED_FIELDS[self.type]:
            value = getattr(self, key)
            if value is None:
                problems.append(((key,), f"is required for auth type {self.type!r}"))
            elif not value.strip():
                problems.append(((key,), f"expected a non-empty string, got {describe(value)}"))
        header = self.header or AUTH_DEFAULT_HEADERS.get(self.type)
        if header is not None and not HEADER_NAME_RE.match(header):
            problems.append((("header",), f"{header!r} is not a valid HTTP header name"))
        raise_problems(problems, self)
        return self


class Injection(FolderModel):
    """Where one key of the scope context goes in every call (the model's own value is overridden)."""

    location: Annotated[Literal["header", "query", "path", "body"], Choice("location")] = Field(
        alias="in", description="path replaces {field} in the endpoint; body sets a top-level JSON field."
    )
    field: NonEmptyString = Field(description="The header, query parameter, {placeholder} or body field.")
    required: Boolean = Field(
        False, description="Fail the call before any traffic when the scope context lacks the key."
    )

    @model_validator(mode="after")
    def _header_name(self) -> Injection:
        if self.location == "header" and not HEADER_NAME_RE.match(self.field):
            raise_problems([(("field",), f"{self.field!r} is not a valid HTTP header name")], self)
        return self


def _base_url(url: str) -> str:
    parts = urlsplit(url)
    problems: list[tuple[Loc, str]] = []
    if parts.username is not None or parts.password is not None:
        problems.append(((), "must not contain credentials; put them in auth (e.g. env:API_TOKEN)"))
    if parts.query or parts.fragment:
        problems.append(((), "must not contain a query string or fragment"))
    raise_problems(problems, url)
    return url


def _context_key(key: str) -> str:
    if not key.strip():
        raise PydanticCustomError("folder", "the scope context key must not be empty")
    return key


class SpecFile(FolderModel):
    """connections/<name>/spec.json: an outbound HTTP API the agent may call through the `request` tool."""

    model_config = {"title": "connections/<name>/spec.json"}
    keeps_references = ("auth",)

    description: String = Field("", description="What the API offers; shown to the model.")
    base_url: Annotated[HttpUrl, AfterValidator(_base_url)] = Field(
        description="Every call goes to baseUrl + endpoint, never elsewhere."
    )
    auth: Auth | None = Field(None, description="How calls authenticate; none when left out.")
    context_injection: dict[Annotated[str, AfterValidator(_context_key)], Injection] = Field(
        default_factory=dict, description="For each key of the scope context: where it goes in every call."
    )
    timeout_seconds: PositiveNumber = Field(30.0, description="Seconds before a call gives up.")


def _endpoint(endpoint: str) -> str:
    method, _, path = endpoint.strip().partition(" ")
    problems: list[tuple[Loc, str]] = []
    if method.upper() not in ACCESS_METHODS:
        problems.append(((), f"unknown HTTP method {method.upper()!r}; expected one of {', '.join(ACCESS_METHODS)}"))
    if not path.strip().startswith("/"):
        problems.append(((), "expected 'METHOD /path', e.g. 'POST /transfers' (the path starts with '/')"))
    raise_problems(problems, endpoint)
    return endpoint


def _endpoint_identity(endpoint: str) -> tuple[str, str]:
    method, _, path = endpoint.strip().partition(" ")
    return method.upper(), path.strip()


class AccessRuleFile(FolderModel):
    """What a call to one endpoint needs."""

    confirm: Annotated[bool | Literal["never"], Expect('true, false or "never"', from_text=bool_from_text)] = Field(
        description='true: the user approves a preview first; "never": always refused; false: free.'
    )
    reason: String = Field("", description="Why, shown with the preview or the refusal.")


class AccessFile(FolderModel):
    """connections/<name>/access.json: which mutating endpoints need confirmation or are forbidden."""

    model_config = {"title": "connections/<name>/access.json"}

    endpoints: dict[Annotated[str, AfterValidator(_endpoint)], AccessRuleFile] = Field(
        description="'METHOD /path' (the path may contain {placeholders}) -> its rule.",
        json_schema_extra={"propertyNames": {"pattern": ENDPOINT_PATTERN}},
    )

    @model_validator(mode="after")
    def _one_rule_per_endpoint(self) -> AccessFile:
        seen: set[tuple[str, str]] = set()
        problems: list[tuple[Loc, str]] = []
        for endpoint in self.endpoints:
            identity = _endpoint_identity(endpoint)
            if identity in seen:
                problems.append((("endpoints", endpoint), f"duplicates the rule for {' '.join(identity)}"))
            seen.add(identity)
        raise_problems(problems, self)
        return self


def _scope_id(scope_id: str) -> str:
    try:
        return validate_scope_id(scope_id)
    except InvalidScope as error:
        raise PydanticCustomError("folder", f"invalid scope id: {error}") from None


def _credential_key(key: str) -> str:
    if not key.strip():
        raise PydanticCustomError("folder", "a credential key must not be empty")
    return key


class DevScope(FolderModel):
    """One scope's development credentials."""

    credentials: dict[Annotated[str, AfterValidator(_credential_key)], String] = Field(
        description="KEY -> value: what `scope:KEY` resolves to in this scope (DEBUG only)."
    )


class ScopesFile(RootModel[dict[Annotated[str, AfterValidator(_scope_id)], DevScope]]):
    """.amodal/scopes.json, development only: per-scope credentials. Never part of a deploy."""

    model_config = {
        "strict": True,
        "frozen": True,
        "title": ".amodal/scopes.json",
        "json_schema_extra": {"propertyNames": {"maxLength": MAX_SCOPE_ID_LENGTH}},
    }
    resolves_env: ClassVar[bool] = False  # values are the credentials themselves


# --- What the runtime uses ----------------------------------------------------------------------------


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


def _auth(auth: Auth) -> AuthSpec:
    fields = auth.model_dump()
    fields["header"] = auth.header or AUTH_DEFAULT_HEADERS.get(auth.type)
    if auth.type == "bearer" and auth.prefix is None:
        fields["prefix"] = DEFAULT_BEARER_PREFIX
    return AuthSpec(**fields)


def _connection(name: str, spec: SpecFile, access: AccessFile | None) -> ConnectionSpec:
    return ConnectionSpec(
        name=name,
        base_url=spec.base_url.rstrip("/"),
        auth=None if spec.auth is None else _auth(spec.auth),
        context_injection=tuple(
            InjectionRule(key=key, location=rule.location, field=rule.field, required=rule.required)
            for key, rule in spec.context_injection.items()
        ),
        timeout_seconds=spec.timeout_seconds,
        access_rules=tuple(
            AccessRule(*_endpoint_identity(endpoint), confirm=rule.confirm, reason=rule.reason)
            for endpoint, rule in (access.endpoints.items() if access is not None else ())
        ),
        description=spec.description,
    )


# --- The folder parts ---------------------------------------------------------------------------------


def load_connections(reader: FolderReader) -> dict[str, ConnectionSpec]:
    connections: dict[str, ConnectionSpec] = {}
    for entry in reader.entries("connections"):
        relative = f"connections/{entry.name}"
        if not entry.is_dir():
            if entry.suffix == ".json":
                reader.add(relative, "", "a connection is a folder: connections/<name>/spec.json")
            continue
        spec_file, access_file = f"{relative}/spec.json", f"{relative}/access.json"
        if not reader.is_file(spec_file):
            reader.add(spec_file, "", "is missing: every connection folder needs one (baseUrl)")
            continue
        if not KEBAB_NAME_RE.match(entry.name):
            message = "must be lower-case kebab-case (letters, digits, '-'), e.g. 'app-api'"
            reader.add(spec_file, "", f"connection folder name {entry.name!r} {message}")
        spec = reader.load(SpecFile, spec_file)
        access = reader.load(AccessFile, access_file) if reader.is_file(access_file) else None
        if spec is not None:  # (a broken access.json is a problem: the folder does not load at all)
            connections[entry.name] = _connection(entry.name, spec, access)
    return connections


def load_dev_scopes(reader: FolderReader) -> dict[str, dict[str, str]]:
    """`.amodal/scopes.json`: scope id -> its credentials, for development only."""
    if not reader.is_file(DEV_SCOPES_FILE):
        return {}
    scopes = reader.load(ScopesFile, DEV_SCOPES_FILE)
    return {} if scopes is None else {scope_id: dict(entry.credentials) for scope_id, entry in scopes.root.items()}


CONNECTIONS: FolderPart[dict[str, ConnectionSpec]] = FolderPart(
    "connections",
    order=10,
    load=load_connections,
    files=(
        FileKind("spec", "connections/<name>/spec.json", SpecFile),
        FileKind("access", "connections/<name>/access.json", AccessFile),
    ),
)
DEV_SCOPES: FolderPart[dict[str, dict[str, str]]] = FolderPart(
    "dev_scopes", order=40, load=load_dev_scopes, files=(FileKind("scopes", DEV_SCOPES_FILE, ScopesFile),)
)


def connections_of(agent: AgentFolder) -> dict[str, ConnectionSpec]:
    """The agent's connections by name."""
    return agent.part(CONNECTIONS)


def dev_scopes_of(agent: AgentFolder) -> dict[str, dict[str, str]]:
    """`.amodal/scopes.json`: scope id -> credential KEY -> value (development only)."""
    return agent.part(DEV_SCOPES)


SECRET_AUTH_FIELDS = ("token", "username", "password")  # the auth values resolved as references per call


def scope_credential_keys(spec: ConnectionSpec) -> tuple[str, ...]:
    """The KEYs of the `scope:KEY` references the connection's auth needs, in field order."""
    if spec.auth is None:
        return ()
    references = (getattr(spec.auth, name) or "" for name in SECRET_AUTH_FIELDS)
    keys = [reference[len(SCOPE_PREFIX) :] for reference in references if reference.startswith(SCOPE_PREFIX)]
    return tuple(dict.fromkeys(keys))
