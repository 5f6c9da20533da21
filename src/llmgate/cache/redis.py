"""Answers kept in Redis, shared by every instance that uses it; each key expires with its TTL in Redis itself.

A Redis that fails or is slow costs a miss, never an error: the request goes upstream, and a warning is logged
(at most once a minute). redis-py is imported only when this storage is used.
"""

from __future__ import annotations

import time
from typing import Any

from loguru import logger

from llmgate.cache.store import Answer, decode_answer, encode_answer

PREFIX = "llmgate:cache:"
TIMEOUT_S = 0.5
"""A lookup that takes longer is a miss: the upstream is the fallback, and a slow cache must not hold requests."""
_WARN_EVERY_S = 60.0


class RedisStore:
    """The `AnswerStore` in Redis."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._client: Any = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)
        self._warned_at = -_WARN_EVERY_S
        self.failures = 0

    @property
    def held_bytes(self) -> int:
        return 0

    async def get(self, key: str) -> Answer | None:
        try:
            data = await self._client.get(PREFIX + key)
        except Exception as exc:
            self._failed("read", exc)
            return None
        if data is None:
            return None
        try:
            return decode_answer(data)
        except Exception as exc:  # written by another version, or not by llmgate
            self._failed("decode", exc)
            return None

    async def put(self, key: str, answer: Answer, ttl_s: float) -> None:
        try:
            await self._client.set(PREFIX + key, encode_answer(answer), px=max(1, int(ttl_s * 1000)))
        except Exception as exc:
            self._failed("write", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            logger.warning("response cache: Redis {} failed ({}); served as a miss", what, exc)

    async def close(self) -> None:
        await self._client.aclose()
