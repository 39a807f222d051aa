"""Who is calling, and for which scope.

Callers present `Authorization: Bearer <jwt>` or `Authorization: Bearer ak_...` (an API key). JWTs are
verified by simplejwt's TokenBackend (PyJWT underneath) with the one configured algorithm, so unsigned
(`alg: none`) and wrongly signed tokens fail. With `AMODAL_AUTH=open` (development only) a request
without credentials is accepted as an anonymous caller that may choose its scope in the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from rest_framework import authentication
from rest_framework.request import Request
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenBackendError

from core.db import db_call
from core.errors import ApiError, Forbidden, KnownError, ValidationFailed
from core.validation import check_json_text
from scoping.context import GLOBAL_SCOPE, InvalidScope, validate_scope_id
from scoping.models import ApiKey
from scoping.services import API_KEY_PREFIX, digest_api_key


@dataclass(frozen=True)
class Caller:
    kind: str  # "jwt", "api_key", "open" or "staff"
    sub: str = ""
    claims_scope_id: str | None = None
    claims_context: dict[str, str] | None = None
    api_key_id: int | None = None
    api_key_scope_id: str | None = None
    shared_write: bool = False
    manage_credentials: bool = False
    manage_scopes: bool = False
    expires_at: int | None = None  # a JWT's `exp` (seconds since the epoch)
    # The Django user behind a staff session (its permissions decide what it may do: scoping.permissions).
    staff_user: Any = field(default=None, compare=False, repr=False)

    @property
    def is_trusted_server(self) -> bool:
        return self.kind == "api_key"

    @property
    def may_choose_scope(self) -> bool:
        """Only a trusted server, an operator's session or open development mode names the scope in the
        request; an end user's token carries it in its claims."""
        return self.kind in ("api_key", "staff", "open")

    # DRF treats the authenticated "user" as truthy and asks is_authenticated.
    @property
    def is_authenticated(self) -> bool:
        return True


@dataclass(frozen=True)
class ResolvedScope:
    scope_id: str
    context: dict[str, str]


def unauthorized(message: str, code: str = "invalid_token") -> ApiError:
    return ApiError(401, code, message)


def token_backend() -> TokenBackend:
    return _token_backend(
        settings.AMODAL_JWT_ALGORITHM,
        settings.AMODAL_JWT_SECRET,
        settings.AMODAL_JWT_PUBLIC_KEY_FILE,
        settings.AMODAL_JWT_AUDIENCE or None,
        settings.AMODAL_JWT_ISSUER or None,
    )


@lru_cache(maxsize=4)
def _token_backend(
    algorithm: str, secret: str, public_key_file: str, audience: str | None, issuer: str | None
) -> TokenBackend:
    """Built once per configuration. With an audience or issuer configured, PyJWT refuses a token that
    lacks that `aud` / `iss` claim or carries another."""
    if algorithm == "HS256":
        return TokenBackend(algorithm, signing_key=secret, audience=audience, issuer=issuer)
    public_key = Path(public_key_file).read_text()
    return TokenBackend(algorithm, signing_key=None, verifying_key=public_key, audience=audience, issuer=issuer)


def string_map(value: object) -> dict[str, str] | None:
    if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    return None


def caller_from_jwt(raw_token: str) -> Caller:
    """A JWT caller acts only in the scope its claims name: an absent or null `scope_id` is the global
    scope, never "whatever the body says" (SPEC §2, fail closed)."""
    try:
        claims = token_backend().decode(raw_token, verify=True)  # type: ignore[arg-type]  # stubs say Token; it takes the string
    except TokenBackendError:
        raise unauthorized("The token is invalid, expired or not signed with the expected key.")
    if "exp" not in claims:
        raise unauthorized("The token has no expiry (exp claim).")
    scope_id = claims.get("scope_id")
    if scope_id is None:
        scope_id = GLOBAL_SCOPE
    try:
        validate_scope_id(scope_id)
    except InvalidScope:
        raise unauthorized("The token's scope_id claim is not a valid scope id.")
    raw_context = claims.get("scopeContext")
    context = {} if raw_context is None else string_map(raw_context)
    if context is None:
        raise unauthorized("The token's scopeContext claim must map strings to strings.")
    sub = claims.get("sub", "")
    if not isinstance(sub, str):
        raise unauthorized("The token's sub claim must be a string.")
    return Caller(
        kind="jwt",
        sub=sub,
        claims_scope_id=scope_id,
        claims_context=context,
        expires_at=int(claims["exp"]),
    )


def caller_from_api_key(raw_key: str) -> Caller:
    api_key = ApiKey.objects.filter(key_digest=digest_api_key(raw_key), revoked_at__isnull=True).first()
    if api_key is None:
        raise unauthorized("The API key is unknown or revoked.")
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=timezone.now())
    return Caller(
        kind="api_key",
        sub=f"api-key:{api_key.name}",
        api_key_id=api_key.pk,
        api_key_scope_id=api_key.scope_id,
        shared_write=api_key.shared_write,
        manage_credentials=api_key.manage_credentials,
        manage_scopes=api_key.manage_scopes,
    )


def authenticate_authorization(header_value: str | None) -> Caller:
    """The caller behind an Authorization header value (sync: an API key is looked up in the DB)."""
    if not header_value:
        if settings.AMODAL_AUTH == "open":
            return Caller(kind="open")
        raise unauthorized("Send Authorization: Bearer <token>.", code="authentication_required")
    scheme, _, credential = header_value.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise unauthorized("The Authorization header must be 'Bearer <token>'.")
    if credential.startswith(API_KEY_PREFIX):
        return caller_from_api_key(credential)
    return caller_from_jwt(credential)


async def authenticate_async(header_value: str | None) -> Caller:
    """`authenticate_authorization` from async code: a JWT is checked on the event loop (it needs no
    database), only an API key goes to the database thread."""
    credential = (header_value or "").strip().partition(" ")[2].strip()
    if credential.startswith(API_KEY_PREFIX):
        caller: Caller = await db_call(authenticate_authorization)(header_value)
        return caller
    return authenticate_authorization(header_value)


class ScopeRequired(KnownError):
    status_code, default_code = 400, "scope_required"

    def __init__(self) -> None:
        super().__init__("This agent requires a scope: send a token with a scope_id claim or a scope_id in the body.")


# Whether the served agent requires a scope (amodal.json `scope.requireScope`). The agent folder belongs to
# a higher app, which names the source in its AppConfig.ready(); until then every check fails loudly.
_scope_required_source: Callable[[], bool] | None = None


def require_scope_from(source: Callable[[], bool]) -> None:
    global _scope_required_source
    _scope_required_source = source


def scope_is_required() -> bool:
    if _scope_required_source is None:
        raise ImproperlyConfigured("No app has said whether a scope is required (scoping.require_scope_from).")
    return _scope_required_source()


def resolve_scope(
    caller: Caller, body_scope_id: object, body_context: object, *, scope_optional: bool = False
) -> ResolvedScope:
    """The one rule for the scope of a request (HTTP and WebSocket). A JWT's claims decide its scope,
    whatever the body says (a body that disagrees is ignored, never an error). Only callers that may
    choose (an API key, a staff session, open mode) read the body. When the agent requires a scope, the
    global one is refused (400 scope_required) unless the caller acts on something that has no scope
    (`scope_optional`: a shared store, credentials)."""
    resolved = _resolve(caller, body_scope_id, body_context)
    if not scope_optional and resolved.scope_id == GLOBAL_SCOPE and scope_is_required():
        raise ScopeRequired()
    return resolved


def resolve_addressed_scope(caller: Caller, raw_scope_id: object, *, scope_optional: bool = False) -> ResolvedScope:
    """The scope a request addresses in its URL, for a resource that is a scope (`/api/scopes/<scope id>`).
    There `""` is the global scope itself, never "not given" as in a body. A caller acts only where it
    may: a JWT in its claims' scope, a restricted API key in its own (elsewhere: 403 forbidden)."""
    try:
        scope_id = validate_scope_id(raw_scope_id)
    except InvalidScope as exc:
        raise ApiError(400, "invalid_scope", str(exc))
    own = caller.api_key_scope_id if caller.may_choose_scope else (caller.claims_scope_id or GLOBAL_SCOPE)
    if own is not None and scope_id != own:
        who = "API key" if caller.kind == "api_key" else "token"
        raise Forbidden(f"This {who} is restricted to another scope.")
    if not scope_optional and scope_id == GLOBAL_SCOPE and scope_is_required():
        raise ScopeRequired()
    return ResolvedScope(scope_id, {})


def _resolve(caller: Caller, body_scope_id: object, body_context: object) -> ResolvedScope:
    if not caller.may_choose_scope:
        return ResolvedScope(caller.claims_scope_id or GLOBAL_SCOPE, dict(caller.claims_context or {}))
    if body_scope_id is None or body_scope_id == GLOBAL_SCOPE:
        scope_id = caller.api_key_scope_id or GLOBAL_SCOPE
    else:
        try:
            scope_id = validate_scope_id(body_scope_id)
        except InvalidScope as exc:
            raise ApiError(400, "invalid_scope", str(exc))
    if caller.api_key_scope_id is not None and scope_id != caller.api_key_scope_id:
        raise ApiError(403, "scope_forbidden", "This API key is restricted to another scope.")
    context = {} if body_context is None else string_map(body_context)
    if context is None:
        raise ValidationFailed("context: must be an object of string to string.")
    check_json_text(context, "context")
    return ResolvedScope(scope_id, context)


class BearerAuthentication(authentication.BaseAuthentication):
    """DRF authentication with the same rules; the Caller is both request.user and request.auth."""

    def authenticate(self, request: Request) -> tuple[Caller, Caller]:
        user = getattr(request._request, "user", None)
        header = request.META.get("HTTP_AUTHORIZATION")
        if not header and user is not None and user.is_authenticated and user.is_staff:
            authentication.SessionAuthentication().enforce_csrf(request)
            caller = Caller(kind="staff", sub=f"staff:{user.get_username()}", shared_write=True, staff_user=user)
            return caller, caller
        caller = authenticate_authorization(header)
        return caller, caller

    def authenticate_header(self, request: Request) -> str:
        return "Bearer"
