"""Credential → Principal: the master key (admin), a virtual token (`lg-…`, cached), or an open gateway.

`authenticate` is synchronous and answers from memory; it returns None only when a virtual token is not
cached (or its entry is too old), and the caller then awaits `load`.
"""

from __future__ import annotations

import hmac
from typing import Literal

from llmgate.access.tokens import WRONG_KEY, TokenCache, TokenEntry, hash_secret, is_token_secret
from llmgate.errors import Unauthorized


class Principal:
    """Who is calling: the master key, an open gateway's caller, or a virtual token's entry."""

    __slots__ = ("entry", "kind")

    def __init__(self, kind: Literal["master", "open", "token"], entry: TokenEntry | None = None) -> None:
        self.kind = kind
        self.entry = entry


MASTER = Principal("master")
OPEN = Principal("open")

_MISSING = ("You didn't provide an API key. Provide it in the Authorization header as "
            "'Bearer YOUR_KEY' or in the x-api-key header.")


class Authenticator:
    """Checks a request's credential; with no master key configured, callers without a token are let in
    (loopback only), and virtual tokens are still checked."""

    __slots__ = ("_master_key", "tokens")

    def __init__(self, master_key: str | None, tokens: TokenCache | None = None) -> None:
        self._master_key = master_key.encode() if master_key else None
        self.tokens = tokens

    def authenticate(self, credential: str | None, now: float) -> Principal | None:
        """The caller's Principal; None when the store must be asked; `Unauthorized` when refused."""
        if credential and self.tokens is not None and is_token_secret(credential):
            entry = self.tokens.lookup(hash_secret(credential), now)
            if entry is None:
                return None
            entry.check(now)
            return Principal("token", entry)
        if self._master_key is None:
            return OPEN
        if not credential:
            raise Unauthorized(_MISSING)
        # compare_digest takes time independent of where the strings differ (not of their lengths)
        if hmac.compare_digest(credential.encode(), self._master_key):
            return MASTER
        raise Unauthorized(WRONG_KEY)

    async def load(self, credential: str, now: float) -> Principal:
        """A virtual token that was not cached: ask the store once, then check it."""
        assert self.tokens is not None
        entry = await self.tokens.load(hash_secret(credential))
        entry.check(now)
        return Principal("token", entry)
