"""Reload: read the configuration again and swap in a new generation of upstreams without dropping a request
(SIGHUP). Requests in flight finish on the generation they started with; clients whose pool is unchanged are
kept, the others are closed once their last request ends."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec
from loguru import logger

from llmgate.access.projects import per_user_defaults
from llmgate.audit import SYSTEM, Actor
from llmgate.config import ConfigError, ProviderConfig, Settings, load_settings
from llmgate.proxy.client import UpstreamClient
from llmgate.upstreams import Upstreams, close_all

if TYPE_CHECKING:
    from llmgate.services import Services


class Reloader:
    """Swaps `services.upstreams` (and `services.settings`) for a new configuration, one reload at a time."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.count = 0
        """Reloads that took effect."""
        self._lock = asyncio.Lock()

    async def reload(self, settings: Settings | None = None, actor: Actor = SYSTEM) -> Settings:
        """Load the config again (from the same file and environment) and swap it in.

        A bad config raises ConfigError and changes nothing. Server settings (address, workers, body limit), the
        store, Redis and the secrets need a restart: they come from the environment, read at start.
        """
        services = self.services
        async with self._lock:
            current = services.settings
            if settings is None:
                settings = load_settings(config_path=current.config_path)
            if settings.server != current.server:
                logger.warning("reload: [server] settings changed; they take effect at the next restart")
            if settings.auth != current.auth:
                logger.warning("reload: [auth] settings changed; they take effect at the next restart")
            old = services.upstreams
            clients: dict[str, UpstreamClient] = {}
            for provider in settings.providers:
                kept = old.clients.get(provider.name)
                clients[provider.name] = kept if kept is not None and _same_pool(kept.provider, provider) else \
                    services.new_client(provider)
            fresh = [c for c in clients.values() if c not in old.clients.values()]
            for client in fresh:
                await client.open()
            settings = msgspec.structs.replace(settings, server=current.server, auth=current.auth,
                                               master_key=current.master_key,
                                               management_token=current.management_token,
                                               metrics_token=current.metrics_token,
                                               secret_key=current.secret_key, database_url=current.database_url,
                                               redis_url=current.redis_url)
            new = Upstreams(settings, clients, old, old.clock)
            retired = [c for c in old.clients.values() if c not in clients.values()]
            services.upstreams, services.settings = new, settings
            if settings.projects != current.projects:  # [projects.<id>.per_user]: cached tokens take them up
                services.tokens.per_user_defaults = per_user_defaults(settings.projects)
                services.tokens.forget_all()
            self.count += 1
            if retired:
                if old.active == 0:
                    await close_all(retired)
                else:
                    old.retired = retired
            logger.info("config reloaded: {} provider(s), {} alias(es)", len(settings.providers), len(settings.models))
            await services.audit.record(actor, "config.reload", settings.config_path, _changes(current, settings))
            return settings

    async def reload_or_keep(self) -> bool:
        """Reload; on a bad config log why and keep the running one. True when the new config is in use."""
        try:
            await self.reload()
        except ConfigError as exc:
            logger.error("config reload rejected, keeping the running config: {}", exc)
            return False
        return True


def _changes(old: Settings, new: Settings) -> dict[str, dict[str, Any]]:
    """What a reload changed, by name: providers and model aliases (never their keys)."""
    changes: dict[str, dict[str, Any]] = {}
    for field, before, after in (("providers", [p.name for p in old.providers], [p.name for p in new.providers]),
                                 ("models", [m.name for m in old.models], [m.name for m in new.models])):
        if before != after:
            changes[field] = {"before": before, "after": after}
    return changes


def _same_pool(old: ProviderConfig, new: ProviderConfig) -> bool:
    """A client (its pool) can be kept when where and how it connects is unchanged; keys are per request."""
    return old.base_url == new.base_url and old.timeouts == new.timeouts
