"""Shared limits on a real redis-server: the Lua script admits exactly the limit, however many ask at once."""

from __future__ import annotations

import asyncio
import uuid

from llmgate.access.limits import Counters, Limits
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


def _period(start: float, end: float) -> Counters:
    counters = Counters()
    counters.period_start, counters.period_end = start, end
    return counters


def test_project_budgets_are_counted_per_period_across_callers(redis_url: str) -> None:
    async def run() -> None:
        shared = SharedLimits(redis_url)
        subject = f"project:{uuid.uuid4().hex}"
        limits = Limits(max_requests=30, budget_tokens=100, budget_cost=1.0, owner="Project 'p'", scope="project",
                        period="daily")
        today = _period(86400.0 * 20000, 86400.0 * 20001)
        today.tokens_used = 20  # what this instance knew from the store: the period's hash starts from it
        results = await asyncio.gather(*(shared.admit_budget(subject, limits, today) for _ in range(5)))
        assert results == [None] * 5 and today.request_count == 5 and today.tokens_used == 20
        await shared.record_budget(subject, today, 85, 0.25, has_tpm=False)
        refusal = await shared.admit_budget(subject, limits, today)
        assert refusal is not None and refusal.kind == "budget" and refusal.param == "project.budget_tokens"
        assert today.tokens_used == 105 and today.cost_used == 0.25
        tomorrow = _period(today.period_end, today.period_end + 86400)
        assert await shared.admit_budget(subject, limits, tomorrow) is None  # a new period: a new count
        assert (tomorrow.request_count, tomorrow.tokens_used) == (1, 0)
        await shared.record_budget(subject, tomorrow, 1, 1.0, has_tpm=False)
        refusal = await shared.admit_budget(subject, limits, tomorrow)
        assert refusal is not None and refusal.param == "project.budget_cost"
        await shared.close()

    asyncio.run(run())


def test_end_users_and_project_rpm_in_redis(redis_url: str) -> None:
    async def run() -> None:
        shared = SharedLimits(redis_url)
        project = uuid.uuid4().hex
        user = Limits(rpm=2, owner="This end user", scope="user")
        for name in ("alice", "bob"):
            counters = Counters()
            results = [await shared.admit_budget(f"project:{project}:user:{name}", user, counters) for _ in range(3)]
            assert [r is None for r in results] == [True, True, False]
            refusal = results[-1]
            assert refusal is not None and refusal.param == "user.rpm_limit" and refusal.retry_after_s
        tpm = Limits(tpm=50, owner="Project 'p'", scope="project")
        counters = Counters()
        assert await shared.admit_budget(f"project:{project}", tpm, counters) is None
        await shared.record_budget(f"project:{project}", counters, 60, 0.0, has_tpm=True)
        refusal = await shared.admit_budget(f"project:{project}", tpm, counters)
        assert refusal is not None and refusal.kind == "tokens" and refusal.param == "project.tpm_limit"
        await shared.close()

    asyncio.run(run())


def test_a_token_request_count_belongs_to_its_period(redis_url: str) -> None:
    async def run() -> None:
        shared = SharedLimits(redis_url)
        token = uuid.uuid4().hex
        assert [await shared.admit(token, Limits(max_requests=1), 0, 1000.0) is None for _ in range(2)] == [True, False]
        assert await shared.admit(token, Limits(max_requests=1), 0, 2000.0) is None  # the next period
        await shared.close()

    asyncio.run(run())
