"""GatewayState: what the request path needs, built from Settings and opened in the app's lifespan.

The routing table, upstream clients and model catalog of one configuration form a `Router`; a reload builds a
new Router and swaps it in. A request holds the Router it started with until it ends, so nothing in flight is
dropped; clients the new config no longer uses are closed once the last request on the old Router ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
from loguru import logger

from llmgate.access.authenticate import Authenticator
from llmgate.access.tokens import TokenCache
from llmgate.config import ConfigError, ProviderConfig, Settings, load_settings
from llmgate.observe.lag import LoopLag
from llmgate.observe.metrics import GatewayMetrics
from llmgate.observe.state_metrics import StateSampler
from llmgate.proxy.asgi import WatchList
from llmgate.proxy.client import UpstreamClient, warm_streaming
from llmgate.proxy.forward import fetch_model_list
from llmgate.routing.catalog import ModelCatalog
from llmgate.routing.table import RoutingTable
from llmgate.store.base import Store, open_store
from llmgate.store.crypto import KeyBox
from llmgate.usage.account import EventBuilder
from llmgate.usage.bus import EventBus, Sink
from llmgate.usage.prices import Pricing

WATCH_AFTER_S = 0.25
"""A request is watched for its client leaving only once it has lasted this long: most whole answers and short
streams are done sooner, and an abandoned long generation, the one worth cancelling, is still cut within a
quarter second."""

if TYPE_CHECKING:
    from llmgate.store.redis import SharedLimits
    from llmgate.usage.raw import RawLogSink


class Router:
    """One configuration generation: routing table, upstream clients (one pool per provider), model catalog."""

    __slots__ = ("_closing", "active", "catalog", "clients", "retired", "settings", "table", "watches")

    table: RoutingTable
    catalog: ModelCatalog

    def __init__(self, settings: Settings, clients: dict[str, UpstreamClient], previous: Router | None = None):
        self.settings = settings
        self.table = RoutingTable(settings.providers, settings.models, settings.routing,
                                  previous.table if previous is not None else None)
        self.clients = clients
        self.catalog = ModelCatalog(self.table, self._fetch_models, settings.server.models_cache_ttl_s,
                                    time.monotonic)
        self.active = 0
        """Requests in flight on this Router."""
        self.retired: list[UpstreamClient] | None = None
        """Set on reload: clients to close once `active` drops to zero."""
        self._closing: asyncio.Future[None] | None = None
        self.watches = WatchList(WATCH_AFTER_S)
        """The disconnect watches of this Router's requests that have not started yet."""

    async def _fetch_models(self, provider_name: str) -> list[dict[str, Any]]:
        provider = self.table.providers[provider_name]
        ring = self.table.keyrings[provider_name]
        key = ring.choose(time.monotonic()) or ring.keys[0]
        headers = [*key.auth_headers, *provider.default_headers]
        query = "limit=1000" if provider.config.kind == "anthropic" else ""  # Anthropic pages by 20 by default
        return await fetch_model_list(self.clients[provider_name], provider.upstream_path("/models", query, ""),
                                      headers)

    def leave(self) -> None:
        """A request on this Router ended: close retired clients after the last one."""
        self.active -= 1
        if self.retired is not None and self.active == 0:
            retired, self.retired = self.retired, None
            self._closing = asyncio.ensure_future(_close_all(retired))


class GatewayState:
    """The current Router, the store, the token cache, the authenticator and reload; no request logic."""

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
        self.authenticator = Authenticator(settings.master_key, self.tokens,
                                           has_management_token=settings.management_token is not None)
        self.router = Router(settings, {p.name: UpstreamClient(p) for p in settings.providers})
        self.lag = LoopLag()
        self.metrics = GatewayMetrics()
        spill = server.usage_spill_path or str(Path(server.data_dir) / "usage-spill.jsonl")
        self.raw_log = self._raw_log()
        self.accounting = EventBuilder(lambda: self.settings.prices, self.raw_log)
        self.pricing = Pricing(lambda: self.settings.prices)
        """A virtual token's cost, for its cost budget, priced as the request ends."""
        # /metrics counts every request from its exchange; usage events are built only for the usage sinks.
        self.bus = EventBus(self._sinks(spill), self.accounting, observe=self.metrics.record,
                            prepare=self.accounting.prepare,
                            max_queue=server.usage_queue_size, batch_size=server.usage_batch_size,
                            flush_s=server.usage_flush_s, spill_path=spill)
        self.sampler = StateSampler(self.metrics, lambda: self.router.table, self.bus, self.lag)
        self.started_at = time.monotonic()
        self.reloads = 0
        self._reload_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._warming_streams: asyncio.Future[object] | None = None

    def _sinks(self, spill_path: str) -> list[Sink]:
        """Where usage events go, from the settings (usage/sinks/)."""
        server = self.settings.server
        sinks: list[Sink] = []
        if server.usage_log and server.usage_store:
            from llmgate.usage.sinks.store import StoreSink

            sinks.append(StoreSink(self.store))
        if server.usage_jsonl_path:
            from llmgate.usage.sinks.jsonl import JsonlSink

            sinks.append(JsonlSink(server.usage_jsonl_path, server.usage_jsonl_max_bytes, server.usage_jsonl_backups,
                                   server.usage_jsonl_fsync))
        if server.usage_http_url:
            from llmgate.usage.sinks.http import HttpSink

            sinks.append(HttpSink(server.usage_http_url, spill_path, token=self.settings.usage_http_token,
                                  retries=server.usage_http_retries, timeout_s=server.usage_http_timeout_s))
        if self.raw_log is not None:
            sinks.append(self.raw_log)
        return sinks

    def _raw_log(self) -> RawLogSink | None:
        """The raw body log when LLMGATE_RAW_LOG is on; it masks every key llmgate knows."""
        server, settings = self.settings.server, self.settings
        if not server.raw_log:
            return None
        from llmgate.usage.raw import RawLogSink

        known = [settings.master_key or "", settings.management_token or "", settings.usage_http_token or "",
                 *(key for p in settings.providers for key in p.api_keys)]
        return RawLogSink(server.raw_log_path or str(Path(server.data_dir) / "raw.jsonl"), server.raw_log_max_bytes,
                          server.raw_log_backups, known)

    async def open(self) -> None:
        """Open the store (migrating it), one pooled client per provider, and start the usage write-back, the
        event bus and the loop-lag monitor."""
        await self.store.open()
        self.authenticator.has_tokens = await self.store.has_tokens()
        mode = self.authenticator.access_mode()
        if self.authenticator.is_open:
            logger.warning("!!! /v1 access: {} -- every local process can use this gateway. Set "
                           "LLMGATE_MASTER_KEY or create a token to close it. !!!", mode)
        else:
            logger.info("/v1 access: {}", mode)
        for client in self.router.clients.values():
            await client.open()
        if self.shared is not None:
            self.shared.listen(self.tokens.forget, self.tokens.forget_all)
        self._flusher = asyncio.create_task(self._flush_forever())
        self.bus.start()
        self.lag.start()
        self.sampler.start()
        self._warming_streams = warm_streaming()

    async def close(self) -> None:
        await self.sampler.stop()
        await self.lag.stop()
        if self._warming_streams is not None:
            await self._warming_streams
        await self.bus.close()  # every queued event reaches its sinks (the store is still open)
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.tokens.flush()
        await _close_all(list(self.router.clients.values()))
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

    async def check_access(self) -> None:
        """Ask the store whether it holds a virtual token: at start, then while /v1 is open, so that a token
        issued elsewhere (another instance on the same store) closes it within a write-back interval."""
        has_tokens = await self.store.has_tokens()
        if has_tokens and self.authenticator.is_open:
            logger.info("/v1 access: a virtual token exists; closed from now on")
        self.authenticator.has_tokens = has_tokens

    async def _flush_forever(self) -> None:
        interval = self.settings.server.usage_flush_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tokens.flush()
                if self.authenticator.is_open:
                    await self.check_access()
            except Exception:
                logger.exception("token usage write-back failed")

    async def reload(self, settings: Settings | None = None) -> Settings:
        """Load the config again (from the same file and environment) and swap it in without dropping requests.

        A bad config raises ConfigError and changes nothing. Server settings (address, workers, body limit), the
        store, Redis and the secrets need a restart: they come from the environment, read at start. For SIGHUP
        and the future `POST /manage/reload`.
        """
        async with self._reload_lock:
            if settings is None:
                settings = load_settings(config_path=self.settings.config_path)
            if settings.server != self.settings.server:
                logger.warning("reload: [server] settings changed; they take effect at the next restart")
            old = self.router
            clients: dict[str, UpstreamClient] = {}
            for provider in settings.providers:
                kept = old.clients.get(provider.name)
                clients[provider.name] = kept if kept is not None and _same_pool(kept.provider, provider) else \
                    UpstreamClient(provider)
            fresh = [c for c in clients.values() if c not in old.clients.values()]
            for client in fresh:
                await client.open()
            current = self.settings
            settings = msgspec.structs.replace(settings, server=current.server, master_key=current.master_key,
                                               management_token=current.management_token,
                                               metrics_token=current.metrics_token,
                                               secret_key=current.secret_key, database_url=current.database_url,
                                               redis_url=current.redis_url)
            new = Router(settings, clients, old)
            retired = [c for c in old.clients.values() if c not in clients.values()]
            self.router, self.settings = new, settings
            self.reloads += 1
            if retired:
                if old.active == 0:
                    await _close_all(retired)
                else:
                    old.retired = retired
            logger.info("config reloaded: {} provider(s), {} alias(es)", len(settings.providers), len(settings.models))
            return settings

    async def reload_or_keep(self) -> bool:
        """Reload; on a bad config log why and keep the running one. True when the new config is in use."""
        try:
            await self.reload()
        except ConfigError as exc:
            logger.error("config reload rejected, keeping the running config: {}", exc)
            return False
        return True


def _same_pool(old: ProviderConfig, new: ProviderConfig) -> bool:
    """A client (its pool) can be kept when where and how it connects is unchanged; keys are per request."""
    return old.base_url == new.base_url and old.timeouts == new.timeouts


async def _close_all(clients: list[UpstreamClient]) -> None:
    for client in clients:
        await client.close()
