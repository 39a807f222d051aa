"""Encryption of credential values at rest (Fernet: AES-128-CBC with HMAC-SHA256, from `cryptography`).

The key is `AMODAL_CREDENTIALS_KEY` (a Fernet key: 32 url-safe base64 bytes). In development (DEBUG on)
without one, a key is derived from SECRET_KEY so a fresh checkout works; production settings refuse to
start without the variable.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=4)
def _fernet(configured_key: str, secret_key: str) -> Fernet:
    if configured_key:
        try:
            return Fernet(configured_key.encode())
        except ValueError:
            raise ImproperlyConfigured(
                "AMODAL_CREDENTIALS_KEY is not a Fernet key (32 url-safe base64-encoded bytes); generate one with: "
                'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            )
    derived = hashlib.sha256(b"amodal-credentials:" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def fernet() -> Fernet:
    return _fernet(settings.AMODAL_CREDENTIALS_KEY, settings.SECRET_KEY)


def encrypt(value: str) -> str:
    return fernet().encrypt(value.encode()).decode()


class UndecryptableCredential(Exception):
    pass


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableCredential("A stored credential cannot be decrypted with the configured key.")
