"""The events of a chat stream (SPEC §3), as plain dicts ready for JSON, and secret redaction."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from typing import Any

REDACTED = "[REDACTED]"
MAX_RESULT_CHARS = 50_000
# A key is secret-looking when one of its words is one of these (`auth_token`, `accessToken`,
# `X-API-Key`), judged word by word so `author` or `oauth_provider` are not.
SECRET_WORDS = {
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "auth",
    "credential",
    "credentials",
    "cookie",
    "signature",
}
SECRET_WORD_PAIRS = {("api", "key"), ("private", "key"), ("access", "key"), ("session", "key"), ("secret", "key")}
KEY_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def is_secret_key(key: str) -> bool:
    words = [word.lower() for word in KEY_WORD.findall(key)]
    if SECRET_WORDS.intersection(words):
        return True
    return any(pair in SECRET_WORD_PAIRS for pair in itertools.pairwise(words))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, **fields, "timestamp": now_iso()}


def redact(value: Any) -> Any:
    """Replace the values of keys that look like secrets, at any depth."""
    if isinstance(value, dict):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_key(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def cap(text: str, limit: int = MAX_RESULT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit]


# Shapes of credentials a user might paste: provider keys, our API keys, JWTs, bearer headers.
TOKEN_SHAPES = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{10,}"
    r"|\bak_[A-Za-z0-9_\-]{20,}"
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{16,}"
    r"|\b(?:ghp|gho|github_pat|xox[abpr]|AKIA)[A-Za-z0-9_\-]{12,}"
)


def scrub_secrets(text: str) -> str:
    """Replace token-shaped substrings before text is saved (the model still sees the message)."""
    return TOKEN_SHAPES.sub(REDACTED, text)
