"""Redis for several instances: rpm/tpm/max_requests counted in one place (a Lua script, atomic), and
revocations broadcast over pub/sub so every instance drops its cache entry within about a millisecond.

A request never waits long on Redis: each command has `TIMEOUT_S` (no retries), and after a failure (refused,
timed out: a hung or stopped server) the breaker sends nobody to Redis for `RETRY_AFTER_S`, then lets one
request probe it; meanwhile `SharedUnavailable` is raised at once and the caller counts on this instance.

redis-py is imported lazily: an instance without LLMGATE_REDIS_URL never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from loguru import logger

from llmgate.access.limits import Counters, Limits, Refusal, format_duration, rate_headers, refuse_quota

CHANNEL = "llmgate:token-invalidations"
_WINDOW_MS = 60_000
TIMEOUT_S = 0.25
"""The longest a command may take (connecting included): Redis answers in about a millisecond when well."""
RETRY_AFTER_S = 1.0
"""After a failure, how long requests skip Redis before one probes it again."""
T = TypeVar("T")


class SharedUnavailable(Exception):
    """Redis failed recently: not asked again until the breaker's retry time (the caller counts locally)."""


class RedisBreaker:
    """Closed: every call goes to Redis. Open (after a failure): calls fail at once for `RETRY_AFTER_S`, then one
    call probes; its success closes the breaker, its failure opens it again."""

    __slots__ = ("_clock", "_failed_at", "_probing")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failed_at = -math.inf
        self._probing = False

    @property
    def is_open(self) -> bool:
        return self._failed_at > -math.inf

    async def call(self, command: Awaitable[T]) -> T:
        """Await `command` under the breaker and `TIMEOUT_S`; SharedUnavailable when the breaker is open."""
        probing = False
        if self.is_open:
            if self._probing or self._clock() - self._failed_at < RETRY_AFTER_S:
                if asyncio.iscoroutine(command):
                    command.close()  # never awaited: not a leak to warn about
                raise SharedUnavailable("Redis failed recently")
            self._probing = probing = True
        try:
            async with asyncio.timeout(TIMEOUT_S):
                result = await command
        except Exception:
            if not self.is_open:
                logger.warning("Redis failed: skipped for {} s, then probed", RETRY_AFTER_S)
            self._failed_at = self._clock()
            raise
        finally:
            if probing:
                self._probing = False
        if self.is_open:
            logger.info("Redis answers again: limits are shared again")
        self._failed_at = -math.inf
        return result

# KEYS: request log (zset), token log (zset of "nonce:tokens"), request count.
# ARGV: rpm, tpm, max_requests (-1: none), count so far per the store, a nonce.
# Returns {0} when admitted, else {1 (max_requests) | 2 (rpm) | 3 (tpm), used, wait_ms}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local start = now - 60000
local rpm, tpm, maxr = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if maxr >= 0 then
  redis.call('SET', KEYS[3], ARGV[4], 'NX', 'EX', 86400)
  local c = tonumber(redis.call('GET', KEYS[3]))
  if c >= maxr then return {1, c, 0} end
end
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', start)
  local n = redis.call('ZCARD', KEYS[1])
  if n >= rpm then
    local at = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
    return {2, n, tonumber(at[2]) + 60000 - now}
  end
end
if tpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', start)
  local sum = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    sum = sum + tonumber(string.match(m, ':(%d+)$'))
  end
  if sum >= tpm then
    local at = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {3, sum, tonumber(at[2]) + 60000 - now}
  end
end
if maxr >= 0 then redis.call('INCR', KEYS[3]) end
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[1], 61000)
end
return {0}
"""

# A project's (or an end user's) limits and budgets. KEYS: request log, token log, the period's counts (a hash:
# requests, tokens, cost). ARGV: rpm, tpm, max_requests, budget_tokens, budget_cost (-1: none), the counts to
# start from when the period's hash is new (what this instance knows from the store), a nonce, the hash's TTL (s).
# Returns {code, used, wait_ms, requests, tokens, cost}: code 0 admitted (and counted), 1 max_requests, 2 rpm,
# 3 tpm, 4 budget_tokens, 5 budget_cost; counts as strings (a Lua number would be truncated to an integer).
_ADMIT_BUDGET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local start = now - 60000
local rpm, tpm, maxr = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local btok, bcost = tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('HSET', KEYS[3], 'requests', ARGV[6], 'tokens', ARGV[7], 'cost', ARGV[8])
  redis.call('EXPIRE', KEYS[3], tonumber(ARGV[10]))
end
local c = redis.call('HMGET', KEYS[3], 'requests', 'tokens', 'cost')
local requests, tokens, cost = tonumber(c[1]), tonumber(c[2]), tonumber(c[3])
if maxr >= 0 and requests >= maxr then return {1, c[1], '0', c[1], c[2], c[3]} end
if btok >= 0 and tokens >= btok then return {4, c[2], '0', c[1], c[2], c[3]} end
if bcost >= 0 and cost >= bcost then return {5, c[3], '0', c[1], c[2], c[3]} end
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', start)
  local n = redis.call('ZCARD', KEYS[1])
  if n >= rpm then
    local at = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
    return {2, tostring(n), tostring(tonumber(at[2]) + 60000 - now), c[1], c[2], c[3]}
  end
end
if tpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', start)
  local sum = 0
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    sum = sum + tonumber(string.match(m, ':(%d+)$'))
  end
  if sum >= tpm then
    local at = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return {3, tostring(sum), tostring(tonumber(at[2]) + 60000 - now), c[1], c[2], c[3]}
  end
end
requests = redis.call('HINCRBY', KEYS[3], 'requests', 1)
if rpm >= 0 then
  redis.call('ZADD', KEYS[1], now, ARGV[9])
  redis.call('PEXPIRE', KEYS[1], 61000)
end
return {0, '0', '0', tostring(requests), c[2], c[3]}
"""

# KEYS: token log, the period's counts. ARGV: a nonce, tokens, cost, whether to log tokens for tpm (1/0).
# A period's hash that is gone (expired) is left alone: the next admission starts it from the store's counts.
_RECORD_BUDGET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[1] .. ':' .. ARGV[2])
  redis.call('PEXPIRE', KEYS[1], 61000)
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'tokens', tonumber(ARGV[2]))
  redis.call('HINCRBYFLOAT', KEYS[2], 'cost', ARGV[3])
end
return 1
"""

_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1] .. ':' .. ARGV[2])
redis.call('PEXPIRE', KEYS[1], 61000)
return 1
"""


class SharedLimits:
    """rpm/tpm/max_requests in Redis, and the invalidation channel."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._client: Any = redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S,
                                                 retry=Retry(NoBackoff(), 0))
        self.breaker = RedisBreaker()
        self._admit = self._client.register_script(_ADMIT)
        self._record = self._client.register_script(_RECORD)
        self._admit_budget = self._client.register_script(_ADMIT_BUDGET)
        self._record_budget = self._client.register_script(_RECORD_BUDGET)
        self._listener: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._client.aclose()

    async def admit(self, token_id: str, limits: Limits, request_count: int, period_start: float = 0.0
                    ) -> Refusal | None:
        """Count the request across all instances, or refuse it; the request count is the period's."""
        count = "count" if not period_start else f"count:{period_start:.0f}"
        keys = [f"llmgate:{{{token_id}}}:{name}" for name in ("rpm", "tpm", count)]
        args: list[int | str] = [_or_none(limits.rpm), _or_none(limits.tpm), _or_none(limits.max_requests),
                                 request_count, os.urandom(8).hex()]
        result = await self.breaker.call(self._admit(keys=keys, args=args))
        code = int(result[0])
        if code == 0:
            return None
        used, wait_s = int(result[1]), int(result[2]) / 1000
        if code == 1:
            assert limits.max_requests is not None
            return Refusal("max_requests", f"This token has used all of its {limits.max_requests} requests.",
                           None, rate_headers("requests", limits.max_requests, 0, None), f"{limits.scope}.max_requests")
        limit = limits.rpm if code == 2 else limits.tpm
        assert limit is not None
        unit: Literal["requests", "tokens"] = "requests" if code == 2 else "tokens"
        # the param names the limit, as a local refusal's does: a queued request waits in that limit's line
        return Refusal(unit, f"Rate limit reached: {limit} {unit} per minute. Try again in {format_duration(wait_s)}.",
                       wait_s, rate_headers(unit, limit, limit - used, wait_s),
                       f"{limits.scope}.{'rpm_limit' if code == 2 else 'tpm_limit'}")

    async def record_tokens(self, token_id: str, tokens: int) -> None:
        await self.breaker.call(self._record(keys=[f"llmgate:{{{token_id}}}:tpm"], args=[os.urandom(8).hex(), tokens]))

    async def admit_budget(self, subject: str, limits: Limits, counters: Counters) -> Refusal | None:
        """A project's (`project:<id>`) or end user's limits and budgets, counted across all instances for the
        period `counters` are in; `counters` take the shared counts (for the alerts and the management API)."""
        keys = _budget_keys(subject, counters)
        end = counters.period_end
        ttl_s = 86400 if end == math.inf else max(int(end - counters.period_start) + 60, 60)
        args: list[int | float | str] = [
            _or_none(limits.rpm), _or_none(limits.tpm), _or_none(limits.max_requests), _or_none(limits.budget_tokens),
            -1 if limits.budget_cost is None else limits.budget_cost, counters.request_count, counters.tokens_used,
            repr(counters.cost_used), os.urandom(8).hex(), ttl_s]
        code, used, wait_ms, requests, tokens, cost = (x.decode() if isinstance(x, bytes) else x
                                                        for x in await self.breaker.call(
                                                            self._admit_budget(keys=keys, args=args)))
        # counts only grow within a period; replies to concurrent calls may come back in any order
        counters.request_count = max(counters.request_count, int(requests))
        counters.tokens_used = max(counters.tokens_used, int(tokens))
        counters.cost_used = max(counters.cost_used, float(cost))
        code = int(code)
        if code == 0:
            return None
        if code in (1, 4, 5):
            return refuse_quota(limits, counters, time.time())
        wait_s = int(wait_ms) / 1000
        limit = limits.rpm if code == 2 else limits.tpm
        assert limit is not None
        unit: Literal["requests", "tokens"] = "requests" if code == 2 else "tokens"
        return Refusal(unit, f"Rate limit reached for {limits.owner[0].lower()}{limits.owner[1:]}: {limit} {unit} "
                       f"per minute. Try again in {format_duration(wait_s)}.", wait_s,
                       rate_headers(unit, limit, limit - int(used), wait_s),
                       f"{limits.scope}.{'rpm_limit' if code == 2 else 'tpm_limit'}")

    async def record_budget(self, subject: str, counters: Counters, tokens: int, cost: float, has_tpm: bool) -> None:
        """An answer's tokens and cost, to the subject's period counts (and its tpm log)."""
        keys = _budget_keys(subject, counters)[1:]
        await self.breaker.call(self._record_budget(keys=keys, args=[os.urandom(8).hex(), tokens, repr(cost),
                                                                     1 if has_tpm else 0]))

    async def reset_count(self, token_id: str) -> None:
        """Forget the shared request count (its limit changed): it is taken from the store again."""
        await self._client.delete(f"llmgate:{{{token_id}}}:count")

    async def publish(self, secret_hash: str) -> None:
        """Tell every instance to drop its cache entry for this secret."""
        await self._client.publish(CHANNEL, secret_hash)

    def listen(self, on_message: Callable[[str], None], on_resubscribe: Callable[[], None]) -> None:
        """Call `on_message(secret_hash)` for each invalidation, reconnecting after errors; after a reconnect,
        `on_resubscribe()` (messages sent while disconnected are lost)."""
        self._listener = asyncio.create_task(self._listen(on_message, on_resubscribe))

    async def _listen(self, on_message: Callable[[str], None], on_resubscribe: Callable[[], None]) -> None:
        first = True
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    if not first:
                        on_resubscribe()
                    first = False
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            on_message(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("redis invalidation channel failed ({}); reconnecting in 1 s", exc)
                await asyncio.sleep(1)


def _budget_keys(subject: str, counters: Counters) -> list[str]:
    """The request log, token log and the period's counts of `subject`, in one hash slot."""
    head, _, user = subject.partition(":user:")
    base = f"llmgate:{{{head}}}" + (f":user:{user}" if user else "")
    return [f"{base}:rpm", f"{base}:tpm", f"{base}:budget:{counters.period_start:.0f}"]


def _or_none(value: int | None) -> int:
    return -1 if value is None else value
