"""Shared limits on a real redis-server: the Lua script admits exactly the limit, however many ask at once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
import uuid

import pytest

from llmgate.access.limits import Counters, Limits
from llmgate.store.redis import RETRY_AFTER_S, TIMEOUT_S, RedisBreaker, SharedLimits, SharedUnavailable
from tests.services import run_redis_process


def test_rpm_and_max_requests_are_exact_under_concurrency(redis_url: str) -> None:
    async def run() -> None:
        shared = SharedLimits(redis_url)
        rpm_token, count_token = uuid.uuid4().hex, uuid.uuid4().hex
        results = await asyncio.gather(*(shared.admit(rpm_token, Limits(rpm=25), 0) for _ in range(60)))
        refused = [r for r in results if r is not None]
        assert len(refused) == 35 and {r.kind for r in refused} == {"requests"}
        assert refused[0].headers["x-ratelimit-limit-requests"] == "25" and refused[0].retry_after_s
        assert {r.param for r in refused} == {"token.rpm_limit"}  # the limit that refused: whose line to queue in
        results = await asyncio.gather(*(shared.admit(count_token, Limits(max_requests=10), 4) for _ in range(20)))
        assert sum(r is None for r in results) == 6  # 4 were used before (the store's count)
        assert {r.param for r in results if r is not None} == {"token.max_requests"}
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
        assert refusal.param == "token.tpm_limit"
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


def test_the_breaker_fails_at_once_while_open_and_probes_after_the_retry_time() -> None:
    now = [0.0]
    breaker = RedisBreaker(lambda: now[0])

    async def fails() -> int:
        raise ConnectionError("refused")

    async def works() -> int:
        return 7

    async def run() -> None:
        with pytest.raises(ConnectionError):
            await breaker.call(fails())
        assert breaker.is_open
        with pytest.raises(SharedUnavailable):  # not even tried
            await breaker.call(works())
        now[0] += RETRY_AFTER_S
        with pytest.raises(ConnectionError):  # the probe fails: open again, for another RETRY_AFTER_S
            await breaker.call(fails())
        now[0] += RETRY_AFTER_S / 2
        with pytest.raises(SharedUnavailable):
            await breaker.call(works())
        now[0] += RETRY_AFTER_S
        assert await breaker.call(works()) == 7 and not breaker.is_open


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


def test_a_frozen_redis_costs_one_short_timeout_then_nothing_until_it_is_back() -> None:
    """kill -STOP: the connection is up but nothing answers. The first command times out after TIMEOUT_S, the
    next ones fail at once; after SIGCONT, the first probe after RETRY_AFTER_S shares the limits again."""
    async def run(url: str, proc: subprocess.Popen[bytes]) -> None:
        shared = SharedLimits(url)
        token = uuid.uuid4().hex
        assert await shared.admit(token, Limits(rpm=100), 0) is None  # connected, script loaded
        proc.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(Exception):  # noqa: B017 - redis-py's timeout, or ours
            await shared.admit(token, Limits(rpm=100), 0)
        assert time.monotonic() - started < TIMEOUT_S + 0.5
        started = time.monotonic()
        for _ in range(100):
            with pytest.raises(SharedUnavailable):
                await shared.admit(token, Limits(rpm=100), 0)
        assert time.monotonic() - started < 0.2  # 100 requests, none waiting on Redis
        proc.send_signal(signal.SIGCONT)
        await asyncio.sleep(RETRY_AFTER_S)
        assert await shared.admit(token, Limits(rpm=100), 0) is None and not shared.breaker.is_open
        await shared.close()

    with run_redis_process() as (url, proc):
        asyncio.run(run(url, proc))


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
