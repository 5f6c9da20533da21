"""The `/v1/models` listing: models the config declares, merged with what catch-all upstreams list and the
models of pattern-declared providers (`claude-*`) their upstreams list, in OpenAI's shape.

Upstream lists are cached for a TTL; however many requests miss at once, one fetch per provider is in flight
(the others await it). When a refresh fails and an older list exists, the older list is served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from llmgate.routing.table import RoutingTable

ModelObject = dict[str, Any]
Fetch = Callable[[str], Awaitable[list[ModelObject]]]
Clock = Callable[[], float]


def as_openai_model(model: ModelObject, provider: str) -> ModelObject:
    """An upstream's model object in OpenAI's shape (Anthropic lists `type`, `display_name`, `created_at`)."""
    if model.get("object") == "model":
        return model
    created = model.get("created_at")
    try:
        stamp = int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()) if created else 0
    except (AttributeError, ValueError):
        stamp = 0
    return {"id": model["id"], "object": "model", "created": stamp, "owned_by": provider}


class _Entry:
    __slots__ = ("expires_at", "models")

    def __init__(self, models: list[ModelObject], expires_at: float) -> None:
        self.models = models
        self.expires_at = expires_at


class ModelCatalog:
    """Lists models; `fetch(provider)` asks an upstream for its list (injected: this module does no I/O)."""

    def __init__(self, table: RoutingTable, fetch: Fetch, ttl_s: float, clock: Clock) -> None:
        self._table = table
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Future[list[ModelObject]]] = {}

    async def list_models(self) -> list[ModelObject]:
        """Every model a client can call, each id once (declared models first)."""
        models: list[ModelObject] = [
            {"id": model, "object": "model", "created": 0, "owned_by": provider}
            for model, provider in self._table.declared_models()
        ]
        seen = {m["id"] for m in models}
        sources = [("", provider) for provider in self._table.catch_all_providers()]
        sources += self._table.prefix_providers()
        for prefix, provider in sources:
            try:
                listed = await self._upstream_models(provider)
            except Exception:
                if not prefix:  # the catch-all's list is the listing: its failure is the answer's
                    raise
                continue  # a pattern's provider unreachable: list the rest
            for model in listed:
                model_id = model.get("id")
                if isinstance(model_id, str) and model_id.startswith(prefix) and model_id not in seen:
                    seen.add(model_id)
                    models.append(as_openai_model(model, provider))
        return models

    async def get_model(self, model_id: str) -> ModelObject | None:
        """One model by id, or None."""
        return next((m for m in await self.list_models() if m.get("id") == model_id), None)

    async def _upstream_models(self, provider: str) -> list[ModelObject]:
        now = self._clock()
        entry = self._cache.get(provider)
        if entry is not None and now < entry.expires_at:
            return entry.models
        pending = self._inflight.get(provider)
        if pending is None:
            pending = asyncio.ensure_future(self._refresh(provider, entry))
            self._inflight[provider] = pending
            pending.add_done_callback(lambda _: self._inflight.pop(provider, None))
        # shield: one caller going away must not cancel the fetch the others are waiting for
        return await asyncio.shield(pending)

    async def _refresh(self, provider: str, stale: _Entry | None) -> list[ModelObject]:
        try:
            models = await self._fetch(provider)
        except Exception:
            if stale is not None:
                return stale.models
            raise
        self._cache[provider] = _Entry(models, self._clock() + self._ttl_s)
        return models
