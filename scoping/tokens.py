"""Signed JWTs that carry a scope: minted for demos and tests, verified on every request."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import jwt
from django.conf import settings
from django.utils import timezone

from scoping.context import validate_scope_id


def signing_key(private_key_file: str | None = None) -> str:
    if settings.AMODAL_JWT_ALGORITHM == "HS256":
        return settings.AMODAL_JWT_SECRET
    if not private_key_file:
        raise ValueError(f"{settings.AMODAL_JWT_ALGORITHM} tokens need a private key file to sign.")
    return Path(private_key_file).read_text()


def mint_token(
    *,
    scope_id: str,
    context: dict[str, str] | None = None,
    sub: str = "demo-user",
    ttl_seconds: int = 3600,
    private_key_file: str | None = None,
) -> str:
    validate_scope_id(scope_id)
    now = timezone.now()
    claims = {
        "sub": sub,
        "scope_id": scope_id,
        "scopeContext": dict(context or {}),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    if settings.AMODAL_JWT_AUDIENCE:
        claims["aud"] = settings.AMODAL_JWT_AUDIENCE
    if settings.AMODAL_JWT_ISSUER:
        claims["iss"] = settings.AMODAL_JWT_ISSUER
    return jwt.encode(claims, signing_key(private_key_file), algorithm=settings.AMODAL_JWT_ALGORITHM)
