"""State metrics, sampled: breakers and keys of the current routing table, the event bus, the loop lag.

`StateSampler.sample()` reads what the gateway keeps anyway (breaker states, each key's cooldown and its count
of 429s, the bus's counters) and sets the gauges; counters advance by what changed since the last sample,
tracked per object (a breaker or key that a reload carried over keeps counting; one it dropped stops, without
taking its past away). It runs when /metrics is scraped and, with several workers, every `SAMPLE_EVERY_S` in
each worker so that a scrape landing on one worker sees the others too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING

from llmgate.observe.metrics import GatewayMetrics

if TYPE_CHECKING:
    from llmgate.observe.lag import LoopLag
    from llmgate.routing.table import RoutingTable
    from llmgate.usage.bus import EventBus

SAMPLE_EVERY_S = 1.0
BREAKER_STATES = ("closed", "open", "half_open")


class Deltas:
    """Turns running totals into increments, per tracked object; objects not seen in a pass are forgotten."""

    __slots__ = ("_last", "_seen")

    def __init__(self) -> None:
        self._last: dict[Hashable, float] = {}
        self._seen: dict[Hashable, float] = {}

    def advance(self, key: Hashable, total: float) -> float:
        """How much `total` grew since this key's last pass (all of it for a new key, 0 if it went down)."""
        last = self._last.get(key, 0.0)
        self._seen[key] = total
        return total - last if total > last else 0.0

    def end_pass(self) -> None:
        """Keep only the keys seen since the last end_pass."""
        self._last, self._seen = self._seen, {}


class StateSampler:
    """Sets the state metrics from the routing table, the bus and the lag monitor (see the module docstring)."""

    def __init__(self, metrics: GatewayMetrics, table: Callable[[], RoutingTable], bus: EventBus, lag: LoopLag,
                 cache_bytes: Callable[[], int] | None = None, queued: Callable[[], int] | None = None) -> None:
        """`cache_bytes`: the bytes the response cache holds in this process, when there is one; `queued`: how many
        requests wait for an rpm/tpm slot now."""
        self.metrics = metrics
        self._cache_bytes = cache_bytes
        self._queued = queued
        self._table = table
        self._bus = bus
        self._lag = lag
        self._keys = Deltas()
        self._breakers = Deltas()
        self._bus_totals = Deltas()
        self._deployments: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        self._sample_routing(self._table(), time.monotonic())
        self._sample_bus()
        metrics, lag = self.metrics, self._lag
        metrics.loop_lag.set(lag.lag_s)
        metrics.loop_lag_peak.set(lag.peak_s)
        if self._cache_bytes is not None:
            metrics.cache_bytes.set(self._cache_bytes())
        if self._queued is not None:
            metrics.queued.set(self._queued())

    def _sample_routing(self, table: RoutingTable, now: float) -> None:
        metrics = self.metrics
        for provider, ring in table.keyrings.items():
            resting = disabled = 0
            for key in ring.keys:
                disabled += key.disabled
                resting += not key.disabled and key.cooldown_until > now
                started = self._keys.advance(key, key.rate_limits)
                if started:
                    metrics.cooldowns.labels(provider).inc(started)
            metrics.keys_resting.labels(provider).set(resting)
            metrics.keys_disabled.labels(provider).set(disabled)
        self._keys.end_pass()
        names = set()
        for deployment in table.deployments():
            name = deployment.name
            names.add(name)
            # a pass-through deployment has a breaker per upstream model: 1 in each state one of them is in
            breakers = [deployment.breaker]
            if deployment.models is not None:
                breakers.extend(breaker for _, breaker in deployment.models.items())
            states = set()
            for breaker in breakers:
                states.add(breaker.state)
                opened = self._breakers.advance(breaker, breaker.opened)
                if opened:
                    metrics.breaker_opened.labels(name).inc(opened)
            for state in BREAKER_STATES:
                metrics.breaker.labels(name, state).set(1 if state in states else 0)
        self._breakers.end_pass()
        for gone in self._deployments - names:  # removed by a reload: no longer in any state
            for state in BREAKER_STATES:
                metrics.breaker.labels(gone, state).set(0)
        self._deployments = names

    def _sample_bus(self) -> None:
        metrics, bus, totals = self.metrics, self._bus, self._bus_totals
        metrics.queue_depth.set(bus.depth)
        for counter, key, total in ((metrics.spilled, "spilled", bus.spilled),
                                    (metrics.dropped, "dropped", bus.dropped)):
            grew = totals.advance(key, total)
            if grew:
                counter.inc(grew)
        for sink, failures in bus.sink_failures.items():
            grew = totals.advance(("sink", sink), failures)
            if grew:
                metrics.sink_failures.labels(sink).inc(grew)
        totals.end_pass()

    def start(self) -> None:
        """Sample every SAMPLE_EVERY_S, in multiprocess mode only (one worker alone is sampled when scraped)."""
        if self.metrics.multiprocess:
            self._task = asyncio.create_task(self._run(), name="llmgate-metrics-sampler")

    async def stop(self) -> None:
        """Stop sampling; in multiprocess mode, take this worker's live gauges out of the sums."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.metrics.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(SAMPLE_EVERY_S)
