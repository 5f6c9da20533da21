"""One configuration generation: the routing table, the upstream clients (one pool per provider) and the model
catalog. A reload (llmgate/reload.py) builds the next one and swaps it in; a request keeps the generation it
started with until it ends, so nothing in flight is dropped, and clients the new configuration no longer uses
are closed once the last request on the old generation ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from llmgate.config import RoutingConfig, Settings
from llmgate.providers.registry import GOOGLE_KINDS
from llmgate.proxy.asgi import WatchList
from llmgate.proxy.client import UpstreamClient
from llmgate.proxy.models import fetch_model_list
from llmgate.routing.catalog import ModelCatalog
from llmgate.routing.table import RoutingTable

WATCH_AFTER_S = 0.25
"""A request is watched for its client leaving only once it has lasted this long: most whole answers and short
streams are done sooner, and an abandoned long generation, the one worth cancelling, is still cut within a
quarter second."""


class Upstreams:
    """Routing table, upstream clients and model catalog of one configuration; what the attempt loop is given."""

    __slots__ = ("_closing", "active", "catalog", "clients", "clock", "keepalive_s", "retired", "routing", "settings",
                 "table", "watches")

    table: RoutingTable
    catalog: ModelCatalog

    def __init__(self, settings: Settings, clients: Mapping[str, UpstreamClient],
                 previous: Upstreams | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        """Routing's `now` (cooldowns, breakers, budgets, the model list's cache); tests pass a fake one."""
        self.table = RoutingTable(settings.providers, settings.models, settings.routing,
                                  previous.table if previous is not None else None)
        self.routing: RoutingConfig = self.table.routing
        self.keepalive_s = settings.server.stream_keepalive_s
        self.clients = clients
        self.catalog = ModelCatalog(self.table, self._fetch_models, settings.server.models_cache_ttl_s, clock)
        self.active = 0
        """Requests in flight on this generation."""
        self.retired: list[UpstreamClient] | None = None
        """Set on reload: clients to close once `active` drops to zero."""
        self._closing: asyncio.Future[None] | None = None
        self.watches = WatchList(WATCH_AFTER_S)
        """The disconnect watches of this generation's requests that have not started yet."""

    async def _fetch_models(self, provider_name: str) -> list[dict[str, Any]]:
        provider = self.table.providers[provider_name]
        if provider.config.kind == "bedrock":  # its model list is on another endpoint (bedrock, not -runtime)
            return []
        ring = self.table.keyrings[provider_name]
        key = ring.choose(self.clock()) or ring.keys[0]
        headers = [*key.auth_headers, *provider.default_headers]
        if provider.config.kind in GOOGLE_KINDS:
            from llmgate.proxy.google import fetch_google_models

            return await fetch_google_models(self.clients[provider_name], provider, headers)
        query = "limit=1000" if provider.config.kind == "anthropic" else ""  # Anthropic pages by 20 by default
        return await fetch_model_list(self.clients[provider_name], provider.upstream_path("/models", query, ""),
                                      headers)

    def leave(self) -> None:
        """A request on this generation ended: close retired clients after the last one."""
        self.active -= 1
        if self.retired is not None and self.active == 0:
            retired, self.retired = self.retired, None
            self._closing = asyncio.ensure_future(close_all(retired))


async def close_all(clients: list[UpstreamClient]) -> None:
    for client in clients:
        await client.close()
