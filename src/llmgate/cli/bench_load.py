"""`llmgate bench`'s load loop: closed-loop workers over proxy/wire.py, and the figures drawn from what they saw.

Each of `concurrency` workers sends the same request again as soon as its previous answer has been read to the
end, until `requests` have been started or `duration_s` has passed (requests in flight then are waited for). A
worker times the whole answer and, for streams, its first body byte. The gateway's own upstream client because it
is already there, speaks TLS, hands over a stream's bytes as they arrive and costs little CPU per request (the
load side shares the machine with what it measures).
"""

from __future__ import annotations

import asyncio
import math
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import msgspec

from llmgate.proxy.wire import WireConnectError, WireError, WirePool

CONNECT = "connect"
"""The error name of a request whose connection could not be made."""


class LoadPlan(msgspec.Struct, kw_only=True, frozen=True):
    """What to send, how often and how hard."""

    url: str
    body: bytes
    headers: dict[str, str]
    concurrency: Annotated[int, msgspec.Meta(ge=1, le=10_000)]
    requests: Annotated[int, msgspec.Meta(ge=1)] | None = None
    duration_s: Annotated[float, msgspec.Meta(gt=0)] | None = None
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    is_stream: bool = False


class Percentiles(msgspec.Struct, kw_only=True, frozen=True):
    """Nearest-rank percentiles (a value that was observed, as wrk and HdrHistogram report), in ms."""

    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float


class BenchReport(msgspec.Struct, kw_only=True, frozen=True):
    """One run's figures, as `--json` writes them. `rps` counts successful answers only."""

    url: str
    is_stream: bool
    concurrency: int
    requests: int
    ok: int
    errors: dict[str, int]
    """By cause: `HTTP <status>` for an answer that was not 2xx, `connect`, `timeout`, `read`."""
    duration_s: float
    rps: float
    latency: Percentiles | None
    """The time to the whole answer of successful requests."""
    first_byte: Percentiles | None
    """Streams only: the time to the first body byte of successful requests."""


@dataclass
class Tally:
    """What the workers saw so far (one event loop: plain counters)."""

    started: int = 0
    finished: int = 0
    latencies_s: list[float] = field(default_factory=list)
    first_byte_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    unreachable: str = ""
    """Why the first connection failed, when no request had been answered yet: the run stops there."""


def percentile(sorted_values: list[float], pct: float) -> float:
    """The `pct`-th percentile (0-100] of already sorted values, nearest rank. ValueError when there are none."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    return sorted_values[max(1, math.ceil(pct / 100.0 * len(sorted_values))) - 1]


def percentiles_ms(samples_s: list[float]) -> Percentiles | None:
    """p50/p90/p99/max/mean of samples in seconds, in ms; None without samples."""
    if not samples_s:
        return None
    ms = sorted(s * 1000.0 for s in samples_s)
    return Percentiles(p50_ms=percentile(ms, 50), p90_ms=percentile(ms, 90), p99_ms=percentile(ms, 99),
                       max_ms=ms[-1], mean_ms=sum(ms) / len(ms))


def summarize(plan: LoadPlan, tally: Tally, duration_s: float) -> BenchReport:
    """The report of a finished run."""
    ok = len(tally.latencies_s)
    return BenchReport(
        url=plan.url, is_stream=plan.is_stream, concurrency=plan.concurrency, requests=tally.finished, ok=ok,
        errors=dict(sorted(tally.errors.items())), duration_s=duration_s, rps=ok / duration_s if duration_s else 0.0,
        latency=percentiles_ms(tally.latencies_s),
        first_byte=percentiles_ms(tally.first_byte_s) if plan.is_stream else None,
    )


def _may_start(plan: LoadPlan, tally: Tally, deadline: float) -> bool:
    if tally.unreachable:
        return False
    if plan.requests is not None and tally.started >= plan.requests:
        return False
    return time.monotonic() < deadline


async def _one(pool: WirePool, path: str, plan: LoadPlan, tally: Tally) -> None:
    """Send the request once and record what came of it."""
    sent = time.perf_counter()
    try:
        async with asyncio.timeout(plan.timeout_s):
            async with await pool.stream("POST", path, list(plan.headers.items()), plan.body,
                                         plan.timeout_s) as resp:
                first = await resp.next_chunk()
                first_at = time.perf_counter()
                if first:
                    while await resp.next_chunk():
                        pass
                status = resp.status
    except WireConnectError as exc:
        tally.errors[CONNECT] += 1
        if not tally.latencies_s and not tally.errors.keys() - {CONNECT}:
            tally.unreachable = str(exc)
        return
    except TimeoutError:
        tally.errors["timeout"] += 1
        return
    except WireError:
        tally.errors["read"] += 1
        return
    finally:
        tally.finished += 1
    if 200 <= status < 300:
        tally.latencies_s.append(time.perf_counter() - sent)
        tally.first_byte_s.append(first_at - sent)
    else:
        tally.errors[f"HTTP {status}"] += 1


async def _worker(pool: WirePool, path: str, plan: LoadPlan, tally: Tally, deadline: float) -> None:
    while _may_start(plan, tally, deadline):
        tally.started += 1
        await _one(pool, path, plan, tally)


async def _ticker(tally: Tally, on_tick: Callable[[Tally], None]) -> None:
    while True:
        on_tick(tally)
        await asyncio.sleep(0.1)


async def generate(plan: LoadPlan, on_tick: Callable[[Tally], None] | None = None) -> tuple[Tally, float]:
    """Run the plan; (what was seen, seconds from the first request to the last answer)."""
    tally = Tally()
    parts = urllib.parse.urlsplit(plan.url)
    pool = WirePool(f"{parts.scheme}://{parts.netloc}")  # a connection a worker at most: one request each at a time
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    deadline = time.monotonic() + (plan.duration_s if plan.duration_s is not None else math.inf)
    ticker = asyncio.create_task(_ticker(tally, on_tick)) if on_tick else None
    start = time.perf_counter()
    try:
        await asyncio.gather(*(_worker(pool, path, plan, tally, deadline) for _ in range(plan.concurrency)))
    finally:
        elapsed = time.perf_counter() - start
        pool.close()
        if ticker:
            ticker.cancel()
    if on_tick:
        on_tick(tally)
    return tally, elapsed


def run_load(plan: LoadPlan, on_tick: Callable[[Tally], None] | None = None) -> tuple[Tally, float]:
    """generate() on a fresh event loop (uvloop, which granian[uvloop] brings, when installed)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with granian[uvloop]
        return asyncio.run(generate(plan, on_tick))
    return uvloop.run(generate(plan, on_tick))
