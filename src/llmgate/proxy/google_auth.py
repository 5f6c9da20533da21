"""Access tokens for Vertex AI, from a service-account key (exchanged at the key's own `token_uri`) or, with no
key file, from the metadata server (GKE workload identity, Cloud Run, GCE).

google-auth does the signing and the exchange; it is imported only when a vertex provider first needs a token.
Its refresh is blocking HTTP, so it runs in a worker thread. A token is cached and, once it is within
`REFRESH_AHEAD_S` of expiring, refreshed in the background while requests go on using it: only the very first
request (or one after a failed refresh let the token expire) waits for a token.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from typing import Any

from loguru import logger

from llmgate.proxy.client import StreamError

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
REFRESH_AHEAD_S = 300.0
"""Refresh a token this long before it expires (Google's last an hour)."""
_UNKNOWN_LIFETIME_S = 300.0
"""How long a token whose expiry the issuer did not state is used."""


class CredentialsError(StreamError):
    """No access token could be obtained: counted as a transport failure of the attempt (retried, 502)."""


def _load(credentials_file: str) -> Any:
    import google.auth.compute_engine
    from google.oauth2 import service_account

    if credentials_file:
        return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            credentials_file, scopes=SCOPES)
    return google.auth.compute_engine.Credentials(scopes=SCOPES)  # type: ignore[no-untyped-call]


def _refresh(credentials: Any) -> tuple[str, float]:
    """Blocking: a new token and its remaining lifetime in seconds."""
    import google.auth.transport.requests

    credentials.refresh(google.auth.transport.requests.Request())
    expiry = credentials.expiry
    if expiry is None:
        return credentials.token, _UNKNOWN_LIFETIME_S
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # google-auth's expiry is naive UTC
    return credentials.token, (expiry - now).total_seconds()


class AccessTokens:
    """One provider's bearer token, cached (see the module docstring)."""

    __slots__ = ("_clock", "_credentials", "_expires_at", "_file", "_refreshing", "_token", "name")

    def __init__(self, name: str, credentials_file: str, clock: Any = time.monotonic) -> None:
        self.name = name
        self._file = credentials_file
        self._clock = clock
        self._credentials: Any = None
        self._token = ""
        self._expires_at = 0.0
        self._refreshing: asyncio.Future[None] | None = None

    async def header(self) -> tuple[str, str]:
        """`("authorization", "Bearer …")` with a token valid now."""
        left = self._expires_at - self._clock()
        if left <= REFRESH_AHEAD_S and self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh())
        if left <= 0:
            assert self._refreshing is not None
            await asyncio.shield(self._refreshing)
            if self._expires_at <= self._clock():
                raise CredentialsError(f"could not obtain an access token for provider {self.name!r}")
        return ("authorization", f"Bearer {self._token}")

    async def _refresh(self) -> None:
        try:
            if self._credentials is None:
                self._credentials = await asyncio.to_thread(_load, self._file)
            token, lifetime_s = await asyncio.to_thread(_refresh, self._credentials)
        except Exception as exc:  # google-auth's errors, a missing or malformed key file
            logger.error("provider {}: could not obtain an access token: {}", self.name, exc)
        else:
            self._token, self._expires_at = token, self._clock() + lifetime_s
        finally:
            self._refreshing = None
