"""Shared limits on a real redis-server: the Lua script admits exactly the limit, however many ask at once."""

from __future__ import annotations

import asyncio
import uuid

from llmgate.access.limits import Limits
from llmgate.store.redis import SharedLimits


def test_rpm_and_max_requests_are_exact_under_concurrency(redis_url: str) -> None:
    async def run() -> None:
        shared = SharedLimits(redis_url)
        rpm_token, count_token = uuid.uuid4().hex, uuid.uuid4().hex
        results = await asyncio.gather(*(shared.admit(rpm_token, Limits(rpm=25), 0) for _ in range(60)))
        refused = [r for r in results if r is not None]
        assert len(refused) == 35 and {r.kind for r in refused} == {"requests"}
        assert refused[0].headers["x-ratelimit-limit-requests"] == "25" and refused[0].retry_after_s
        results = await asyncio.gather(*(shared.admit(count_token, Limits(max_requests=10), 4) for _ in range(20)))
        assert sum(r is None for r in results) == 6  # 4 were used before (the store's count)
        await shared.close()

    asyncio.run(run())


def test_tpm_counts_recorded_tokens(redis_url: str) -> None:
    async def run() -> None:
        shared = SharedLimits(redis_url)
        token = uuid.uuid4().hex
        assert await shared.admit(token, Limits(tpm=100), 0) is None
        await shared.record_tokens(token, 60)
        assert await shared.admit(token, Limits(tpm=100), 0) is None
        await shared.record_tokens(token, 60)
        refusal = await shared.admit(token, Limits(tpm=100), 0)
        assert refusal is not None and refusal.kind == "tokens" and refusal.headers["x-ratelimit-limit-tokens"] == "100"
        await shared.close()

    asyncio.run(run())


def test_invalidations_reach_listeners(redis_url: str) -> None:
    async def run() -> None:
        sender, receiver = SharedLimits(redis_url), SharedLimits(redis_url)
        got: asyncio.Queue[str] = asyncio.Queue()
        receiver.listen(got.put_nowait, lambda: None)
        for _ in range(100):  # subscribing takes a moment; publish until it is heard
            await sender.publish("hash-1")
            try:
                assert await asyncio.wait_for(got.get(), 0.05) == "hash-1"
                break
            except TimeoutError:
                continue
        else:
            raise AssertionError("no invalidation received")
        await sender.close()
        await receiver.close()

    asyncio.run(run())
