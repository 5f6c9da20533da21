"""Encryption of per-project upstream keys at rest: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`.

The key comes from LLMGATE_SECRET_KEY: a Fernet key as is, or any other string of 16+ characters, stretched
with SHA-256. Without it llmgate refuses to store upstream keys (it never stores them in clear).
"""

from __future__ import annotations

import base64
import hashlib


class SecretKeyMissing(Exception):
    """LLMGATE_SECRET_KEY is not set, so upstream keys cannot be stored."""


class KeyBox:
    """Encrypts and decrypts short secrets with the key from LLMGATE_SECRET_KEY."""

    def __init__(self, secret_key: str | None) -> None:
        self._fernet = None
        if secret_key:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(fernet_key(secret_key))

    @property
    def is_enabled(self) -> bool:
        return self._fernet is not None

    def encrypt(self, plain: str) -> str:
        if self._fernet is None:
            raise SecretKeyMissing("LLMGATE_SECRET_KEY is not set: llmgate refuses to store upstream keys "
                                   "without a key to encrypt them with.")
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str | None:
        """The clear text, or None when it cannot be decrypted (no key, or another key)."""
        if self._fernet is None:
            return None
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None


def fernet_key(secret_key: str) -> bytes:
    """A Fernet key: `secret_key` itself when it is one, else its SHA-256."""
    try:
        if len(base64.urlsafe_b64decode(secret_key.encode())) == 32:
            return secret_key.encode()
    except ValueError:
        pass
    return base64.urlsafe_b64encode(hashlib.sha256(secret_key.encode()).digest())
