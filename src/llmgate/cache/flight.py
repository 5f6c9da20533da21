"""`ResponseCache`: where answers are kept, for how long (per alias), and single-flight: of identical requests
that miss at once, one goes upstream and the others wait for its answer (a bounded wait, then they go too)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

from llmgate.cache.key import KeyMemo
from llmgate.cache.store import Answer, AnswerStore, MemoryStore

if TYPE_CHECKING:
    from llmgate.config import Settings


class ResponseCache:
    """The cache a gateway holds while it runs (built when the settings turn it on: `Settings.caches`)."""

    def __init__(self, settings: Settings, store: AnswerStore) -> None:
        self.store = store
        self.scope: Literal["project", "global"] = settings.cache.scope
        self.wait_s = settings.cache.wait_s
        self.max_entry_bytes = settings.cache.max_bytes
        """An answer larger than this is not kept (nor held while it streams)."""
        self.keys = KeyMemo()
        """The keys of the bodies seen lately (a hit's key costs a hash of its bytes)."""
        self._settings: Settings | None = None
        self._ttls: dict[str, float] = {}
        self._default_ttl_s: float | None = None
        self._flights: dict[str, asyncio.Future[Answer | None]] = {}
        self.configure(settings)

    def configure(self, settings: Settings) -> None:
        """Take the TTLs of `settings` (a reload's too; the storage and scope stay as started)."""
        self._settings = settings
        self._default_ttl_s = settings.cache.ttl_s
        self._ttls = {model.name: model.cache.ttl_s for model in settings.models if model.cache is not None}

    def ttl_s(self, model: str | None, settings: Settings) -> float | None:
        """How long an answer for `model` is kept under `settings` (the request's configuration); None: not
        cached."""
        if settings is not self._settings:
            self.configure(settings)
        if model is None:
            return self._default_ttl_s
        return self._ttls.get(model, self._default_ttl_s)

    def in_flight(self, key: str) -> asyncio.Future[Answer | None] | None:
        """The identical request being answered now, if any; else None, and the caller leads: it must `land`."""
        flight = self._flights.get(key)
        if flight is None:
            self._flights[key] = asyncio.get_running_loop().create_future()
        return flight

    def land(self, key: str, answer: Answer | None) -> None:
        """The leading request is done: its waiters get `answer` (None: go upstream themselves)."""
        flight = self._flights.pop(key, None)
        if flight is not None and not flight.done():
            flight.set_result(answer)

    async def wait(self, flight: asyncio.Future[Answer | None]) -> Answer | None:
        """The answer of the flight, or None when it failed or took longer than `wait_s`."""
        try:
            return await asyncio.wait_for(asyncio.shield(flight), self.wait_s)
        except TimeoutError:
            return None

    @property
    def held_bytes(self) -> int:
        """Bytes of answers held in this process (for /metrics)."""
        return self.store.held_bytes

    async def close(self) -> None:
        for flight in self._flights.values():
            if not flight.done():
                flight.set_result(None)
        self._flights.clear()
        await self.store.close()


def open_cache(settings: Settings) -> ResponseCache:
    """The cache `settings` ask for: in Redis when LLMGATE_REDIS_URL is set, else in this process."""
    store: AnswerStore
    if settings.redis_url:
        from llmgate.cache.redis import RedisStore

        store = RedisStore(settings.redis_url)
    else:
        store = MemoryStore(settings.cache.max_bytes)
    return ResponseCache(settings, store)
