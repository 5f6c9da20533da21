"""GatewayState: what the request path needs, built from Settings and opened in the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from loguru import logger

from llmgate.access.authenticate import Authenticator
from llmgate.access.tokens import TokenCache
from llmgate.config import Settings
from llmgate.proxy.client import UpstreamClient
from llmgate.proxy.forward import fetch_model_list
from llmgate.routing.catalog import ModelCatalog
from llmgate.routing.table import RoutingTable
from llmgate.store.base import Store, open_store
from llmgate.store.crypto import KeyBox

if TYPE_CHECKING:
    from llmgate.store.redis import SharedLimits


class GatewayState:
    """Upstream clients, routing table, model catalog, the store and the token cache; no request logic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        server = settings.server
        self.store: Store = open_store(settings.database_url, server.data_dir)
        self.keybox = KeyBox(settings.secret_key)
        self.shared: SharedLimits | None = None
        if settings.redis_url:
            from llmgate.store.redis import SharedLimits

            self.shared = SharedLimits(settings.redis_url)
        self.tokens = TokenCache(self.store, self.keybox, server.token_cache_ttl_s, server.token_negative_ttl_s,
                                 time.time, self.shared)
        self.authenticator = Authenticator(settings.master_key, self.tokens)
        self.table = RoutingTable(settings.providers)
        self.clients = {p.name: UpstreamClient(p) for p in settings.providers}
        self.catalog = ModelCatalog(self.table, self._fetch_models, settings.server.models_cache_ttl_s,
                                    time.monotonic)
        self.started_at = time.monotonic()
        self._flusher: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Open the store (migrating it), one pooled client per provider, and start the usage write-back."""
        await self.store.open()
        for client in self.clients.values():
            await client.open()
        if self.shared is not None:
            self.shared.listen(self.tokens.forget, self.tokens.forget_all)
        self._flusher = asyncio.create_task(self._flush_forever())

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.tokens.flush()
        for client in self.clients.values():
            await client.close()
        if self.shared is not None:
            await self.shared.close()
        await self.store.close()

    async def invalidate(self, *secret_hashes: str) -> None:
        """A token changed: drop it here at once, and on every other instance through Redis when configured."""
        for secret_hash in secret_hashes:
            self.tokens.forget(secret_hash)
            if self.shared is not None:
                try:
                    await self.shared.publish(secret_hash)
                except Exception as exc:  # the change is stored; others catch up within the cache TTL
                    logger.warning("could not broadcast a token invalidation: {}", exc)

    async def _flush_forever(self) -> None:
        interval = self.settings.server.usage_flush_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tokens.flush()
            except Exception:
                logger.exception("token usage write-back failed")

    async def _fetch_models(self, provider: str) -> list[dict[str, Any]]:
        return await fetch_model_list(self.clients[provider])
