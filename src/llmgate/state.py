"""GatewayState: what the request path needs, built from Settings and opened in the app's lifespan."""

from __future__ import annotations

import time
from typing import Any

from llmgate.access.authenticate import Authenticator
from llmgate.config import Settings
from llmgate.proxy.client import UpstreamClient
from llmgate.proxy.forward import fetch_model_list
from llmgate.routing.catalog import ModelCatalog
from llmgate.routing.table import RoutingTable


class GatewayState:
    """Upstream clients, routing table, model catalog and the authenticator; no request logic."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.authenticator = Authenticator(settings.master_key)
        self.table = RoutingTable(settings.providers)
        self.clients = {p.name: UpstreamClient(p) for p in settings.providers}
        self.catalog = ModelCatalog(self.table, self._fetch_models, settings.server.models_cache_ttl_s,
                                    time.monotonic)
        self.started_at = time.monotonic()

    async def open(self) -> None:
        """Open one pooled client per provider."""
        for client in self.clients.values():
            await client.open()

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()

    async def _fetch_models(self, provider: str) -> list[dict[str, Any]]:
        return await fetch_model_list(self.clients[provider])

