"""Credential → Principal: the master key (admin), a virtual token (`lg-…`, cached), a JWT from a configured
issuer (verified once, then cached until it expires), or an open gateway.

`authenticate` is synchronous and answers from memory; it returns None only when a virtual token or a JWT is not
cached (or its entry is too old), and the caller then awaits `load`.

`/v1` is open (any caller, no credential) only while nothing could tell callers apart: no master key, no
management token and no virtual token in the store. Whoever hands out tokens expects them to be required, so
the first token closes it, and nothing opens it again short of a restart with an empty store.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Literal

from llmgate.access.token_entry import TokenEntry, hash_secret, is_token_secret
from llmgate.access.tokens import WRONG_KEY, TokenCache
from llmgate.errors import Unauthorized

if TYPE_CHECKING:
    from llmgate.access.jwt import JwtAuth, JwtCaller


class Principal:
    """Who is calling: the master key, an open gateway's caller, a virtual token's entry, or a JWT's caller
    (`user`: the end user its claims name)."""

    __slots__ = ("entry", "kind", "user")

    def __init__(self, kind: Literal["master", "open", "token", "jwt"], entry: TokenEntry | None = None,
                 user: str | None = None) -> None:
        self.kind = kind
        self.entry = entry
        self.user = user


MASTER = Principal("master")
OPEN = Principal("open")

_MISSING = ("You didn't provide an API key. Provide it in the Authorization header as "
            "'Bearer YOUR_KEY' or in the x-api-key header.")


class Authenticator:
    """Checks a request's credential: the master key or a virtual token; anyone while the gateway is open."""

    __slots__ = ("_master_key", "has_management_token", "has_tokens", "jwt", "tokens")

    def __init__(self, master_key: str | None, tokens: TokenCache | None = None, *,
                 has_management_token: bool = False, has_tokens: bool = True, jwt: JwtAuth | None = None) -> None:
        self._master_key = master_key.encode() if master_key else None
        self.tokens = tokens
        self.jwt = jwt
        self.has_management_token = has_management_token
        self.has_tokens = has_tokens
        """Whether the store holds a virtual token (revoked ones count); True until the store has said
        otherwise, so a gateway is never open by mistake."""

    @property
    def is_open(self) -> bool:
        """No credential is needed: no master key, no management token, no virtual token."""
        return self._master_key is None and not self.has_management_token and not self.has_tokens and \
            self.jwt is None

    def access_mode(self) -> str:
        """How /v1 is guarded, and why, for the start-up log and /health."""
        if self.is_open:
            return "open: no master key, no management token, no tokens"
        reasons = [what for what, present in (("a master key", self._master_key is not None),
                                              ("a management token", self.has_management_token),
                                              ("virtual tokens", self.has_tokens),
                                              ("JWT issuers", self.jwt is not None)) if present]
        return "closed: " + ", ".join(reasons)

    def authenticate(self, credential: str | None, now: float) -> Principal | None:
        """The caller's Principal; None when the store must be asked; `Unauthorized` when refused."""
        if credential and self.tokens is not None and is_token_secret(credential):
            entry = self.tokens.lookup(hash_secret(credential), now)
            if entry is None:
                return None
            entry.check(now)
            return Principal("token", entry)
        if credential and self.jwt is not None and looks_like_jwt(credential):
            caller = self.jwt.lookup(credential, now)
            return None if caller is None else _jwt_principal(caller)
        if self._master_key is None:
            if self.is_open:
                return OPEN
            raise Unauthorized(WRONG_KEY if credential else _MISSING)
        if not credential:
            raise Unauthorized(_MISSING)
        # compare_digest takes time independent of where the strings differ (not of their lengths)
        if hmac.compare_digest(credential.encode(), self._master_key):
            return MASTER
        raise Unauthorized(WRONG_KEY)

    async def load(self, credential: str, now: float) -> Principal:
        """A virtual token that was not cached: ask the store once, then check it. A JWT: verify it and find its
        project."""
        if self.jwt is not None and looks_like_jwt(credential):
            return _jwt_principal(await self.jwt.verify(credential, now))
        assert self.tokens is not None
        entry = await self.tokens.load(hash_secret(credential))
        self.has_tokens = True  # another instance (or the CLI's store) issued it: closed from now on
        entry.check(now)
        return Principal("token", entry)


def looks_like_jwt(credential: str) -> bool:
    """A compact JWS: three base64url parts, the header a JSON object (`eyJ` is `{"` encoded)."""
    return credential.startswith("eyJ") and credential.count(".") == 2


def _jwt_principal(caller: JwtCaller) -> Principal:
    return Principal("jwt", caller.entry, caller.user)
