"""Credential → Principal. Today: the master key (or an open gateway on loopback); virtual tokens come next."""

from __future__ import annotations

import hmac
from typing import Literal

import msgspec

from llmgate.errors import Unauthorized


class Principal(msgspec.Struct, frozen=True):
    """Who is calling."""

    kind: Literal["master", "open"]


MASTER = Principal("master")
OPEN = Principal("open")

_MISSING = ("You didn't provide an API key. Provide it in the Authorization header as "
            "'Bearer YOUR_KEY' or in the x-api-key header.")
_WRONG = "Incorrect API key provided."


class Authenticator:
    """Checks a request's credential; with no master key configured every caller is let in (loopback only)."""

    __slots__ = ("_master_key",)

    def __init__(self, master_key: str | None) -> None:
        self._master_key = master_key.encode() if master_key else None

    def authenticate(self, credential: str | None) -> Principal:
        """The caller's Principal; `Unauthorized` when the key is missing or wrong."""
        if self._master_key is None:
            return OPEN
        if not credential:
            raise Unauthorized(_MISSING)
        # compare_digest takes time independent of where the strings differ (not of their lengths)
        if hmac.compare_digest(credential.encode(), self._master_key):
            return MASTER
        raise Unauthorized(_WRONG)
