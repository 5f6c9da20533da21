"""An issuer's signing keys: fetched (from `jwks_url`, or found by OIDC discovery) with the async HTTP client,
cached, and refreshed when a token names a key not seen yet.

A refresh is single-flight (however many requests wait for it, one fetch) and happens at most once every
`REFRESH_EVERY_S`, so a flood of tokens with made-up `kid`s cannot turn into a flood of fetches. A refresh
replaces the key set: a key the issuer removed is refused from then on. When the issuer cannot be reached, the
keys already held keep serving; the outage is logged and shown by `/health` until a fetch succeeds again.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

import httpx
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError
from loguru import logger

from llmgate.config_access import JwtConfig

REFRESH_EVERY_S = 30.0
"""The shortest time between two fetches of one issuer's keys (besides the first)."""
DISCOVERY_PATH = "/.well-known/openid-configuration"


class JwksUnavailable(Exception):
    """The keys could not be fetched or read."""


class IssuerKeys:
    """One issuer's keys by `kid`, and the state of their source (for the log and /health)."""

    def __init__(self, config: JwtConfig, http: Callable[[], httpx.AsyncClient],
                 clock: Callable[[], float]) -> None:
        self.config = config
        self._http = http
        self._clock = clock
        self._jwks_url = config.jwks_url
        self.keys: dict[str | None, PyJWK] = {}
        """kid → key; a key published without a `kid` is under None."""
        self.fetched_at: float | None = None
        """When the keys were last fetched successfully (the clock's time)."""
        self.error: str | None = None
        """Why the last fetch failed, while the issuer stays unreachable."""
        self._tried_at = -math.inf
        self._pending: asyncio.Future[None] | None = None

    def key(self, kid: str | None) -> PyJWK | None:
        """The key a token's header names; a token without a `kid` gets the only key, when there is one."""
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        return self.keys.get(kid)

    def status(self) -> str:
        """`ok`, `not fetched yet`, or `stale: <why>` (serving the cached keys)."""
        if self.error is not None:
            return f"stale: {self.error}" if self.keys else f"unavailable: {self.error}"
        return "ok" if self.fetched_at is not None else "not fetched yet"

    async def refresh(self) -> set[str | None]:
        """Fetch the keys again unless that was tried less than REFRESH_EVERY_S ago; one fetch for every waiter.
        Returns the kids that disappeared."""
        if self._pending is None:
            if self._clock() - self._tried_at < REFRESH_EVERY_S:
                return set()
            self._tried_at = self._clock()
            self._pending = asyncio.ensure_future(self._refresh())
            self._pending.add_done_callback(self._done)
        before = set(self.keys)
        await asyncio.shield(self._pending)
        return before - set(self.keys)

    def _done(self, _: asyncio.Future[None]) -> None:
        self._pending = None

    async def _refresh(self) -> None:
        try:
            keys = await self._fetch()
        except JwksUnavailable as exc:
            if self.error is None:
                logger.warning("JWKS of {} unreachable ({}); serving with the {} cached key(s)", self.config.issuer,
                               exc, len(self.keys))
            self.error = str(exc)
            return
        if self.error is not None:
            logger.info("JWKS of {} reachable again", self.config.issuer)
        self.keys, self.error, self.fetched_at = keys, None, self._clock()

    async def _fetch(self) -> dict[str | None, PyJWK]:
        if not self._jwks_url:
            discovery = await self._get_json(self.config.issuer.rstrip("/") + DISCOVERY_PATH)
            url = discovery.get("jwks_uri")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise JwksUnavailable("the OIDC discovery document has no jwks_uri")
            self._jwks_url = url
        document = await self._get_json(self._jwks_url)
        try:
            key_set = PyJWKSet.from_dict(document)
        except (PyJWKSetError, PyJWKError) as exc:
            raise JwksUnavailable(f"{self._jwks_url}: not a usable JWKS ({exc})") from None
        return {key.key_id: key for key in key_set.keys if key.public_key_use in (None, "sig")}

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http().get(url)
        except httpx.HTTPError as exc:
            raise JwksUnavailable(f"{url}: {type(exc).__name__} {exc}".rstrip()) from None
        if response.status_code != 200:
            raise JwksUnavailable(f"{url}: HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise JwksUnavailable(f"{url}: not JSON") from None
        if not isinstance(document, dict):
            raise JwksUnavailable(f"{url}: not a JSON object")
        return document
