"""Answers in Redis (cache/redis.py): shared with their TTL in Redis; a Redis that is down is a miss."""

from __future__ import annotations

import asyncio

from llmgate.cache.redis import PREFIX, RedisStore
from llmgate.cache.store import Answer
from tests.servers import free_port

ANSWER = Answer([(b"content-type", b"application/json")], b'{"id":"x"}', "openai/gpt-4o")


def test_an_answer_is_kept_with_its_ttl_in_redis(redis_url: str) -> None:
    async def scenario() -> tuple[Answer | None, Answer | None, int]:
        writer, reader = RedisStore(redis_url), RedisStore(redis_url)
        try:
            await writer.put("k-ttl", ANSWER, 30.0)
            ttl_ms = await reader._client.pttl(PREFIX + "k-ttl")
            return await reader.get("k-ttl"), await reader.get("absent"), ttl_ms
        finally:
            await writer.close()
            await reader.close()

    found, absent, ttl_ms = asyncio.run(scenario())
    assert found == ANSWER and absent is None and 0 < ttl_ms <= 30_000


def test_a_redis_that_is_down_is_a_miss_not_an_error() -> None:
    async def scenario() -> tuple[Answer | None, int]:
        store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
        try:
            await store.put("k", ANSWER, 30.0)
            return await store.get("k"), store.failures
        finally:
            await store.close()

    assert asyncio.run(scenario()) == (None, 2)
