"""The store sink: each batch of usage events becomes rows of the store's `usage` table, in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from llmgate.store.base import Store
from llmgate.usage.event import UsageEvent


class StoreSink:
    """Writes events to `store.insert_usage` (token budgets are counted elsewhere: access/tokens.py)."""

    name = "store"

    def __init__(self, store: Store) -> None:
        self.store = store

    async def write(self, events: Sequence[UsageEvent]) -> None:
        await self.store.insert_usage(events)

    async def close(self) -> None:
        """Nothing of its own: the store is closed by the gateway after the bus has drained."""
