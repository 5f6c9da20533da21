"""The usage event bus: the request path drops its `Exchange` here and goes on; a background task turns them
into `UsageEvent`s and writes them, in batches, to every sink.

- `emit()` never blocks or awaits: it appends to a bounded in-memory queue (a deque) and at most wakes the
  writer when a batch is full.
- The writer wakes every `flush_s` (and writes all that is queued) or when `batch_size` exchanges are queued
  (and writes whole batches), builds the events, and hands each batch to all sinks at once; a sink that
  raises is logged and counted, and the others still get the batch.
  The observer (the metrics) sees every batch of exchanges, with their events when there are sinks; with no
  sink, no event is built.
- When the queue is full (sinks slower than traffic for a long while), an arriving event is written straight to
  the spill file (JSONL, one line, no fsync) instead of being queued: never dropped silently. Only when there
  is no spill file, or writing it fails, is it dropped; both are counted (`spilled`, `dropped`) and warned
  about at most every 10 s.
- A batch is prepared, built and observed `_SLICE` exchanges at a time (a few tens of microseconds), each slice
  followed by a pause of `pause_s`: a whole batch is a millisecond of CPU or more, which a request arriving
  meanwhile would otherwise wait out (the tail latency with the usage log on; benchmarks/README.md). The pause
  is a real wait, not `sleep(0)`: only while the event loop waits on its sockets does it let go of the GIL long
  enough for the server's own threads to hand it the requests that came; after a `sleep(0)` the loop goes
  straight on with the next slice. Pauses are for a loop with time to spare: when the queue holds a batch or
  more (the writer falling behind), or the event loop's thread was busy more than `BUSY_SHARE` of the time
  since the last batch began (no idle time in which the work could hide: spread out, it would only slow more
  requests, each by less), slices follow each other without pausing. The sinks still get whole batches, after
  the last slice's pause, and are told whether the writer paces itself (pace.py).
- `close()` drains the queue into the sinks before it returns (graceful shutdown loses nothing).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

import msgspec
from loguru import logger

from llmgate.usage.event import Exchange, UsageEvent
from llmgate.usage.pace import UNHURRIED

_encode = msgspec.json.Encoder().encode
_WARN_EVERY_S = 10.0
_SLICE = 10
"""Exchanges prepared, built and observed between two pauses (tens of microseconds of CPU, more for an event
whose tokens tiktoken must count)."""
PAUSE_S = 0.001
"""The writer's pause after each slice of a batch (module docstring)."""
BUSY_SHARE = 0.9
"""Busier than this (the event loop thread's CPU time over wall time since the last batch), the writer does not
pause (module docstring)."""


class Sink(Protocol):
    """Where usage events go (store, JSONL file, HTTP endpoint, metrics)."""

    name: str

    async def write(self, events: Sequence[UsageEvent]) -> None:
        """Write one batch; raising marks the batch failed for this sink only."""

    async def close(self) -> None:
        """Flush and release what the sink holds."""


BuildEvent = Callable[[Exchange], UsageEvent]
Prepare = Callable[[Sequence[Exchange]], Awaitable[None]]
"""Runs before each slice of a batch is built (account.py: loads the tiktoken encodings it will need)."""
Observe = Callable[[Sequence[Exchange], Sequence[UsageEvent | None] | None], None]
"""Sees every slice of a batch of exchanges, with their events when sinks made the bus build them (the metrics)."""


class EventBus:
    """Bounded queue + one background writer fanning batches out to the sinks (see the module docstring)."""

    def __init__(self, sinks: Sequence[Sink], build: BuildEvent, *, observe: Observe | None = None,
                 prepare: Prepare | None = None, max_queue: int = 10_000, batch_size: int = 100,
                 flush_s: float = 1.0, spill_path: str | None = None, pause_s: float = PAUSE_S) -> None:
        self.sinks = list(sinks)
        self._build = build
        self._prepare = prepare
        self._observe = observe
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.spill_path = spill_path
        self.pause_s = pause_s
        self._queue: collections.deque[Exchange] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._warned_at = -_WARN_EVERY_S
        self._last_batch = (time.monotonic(), time.thread_time())
        """When the last batch began, on the wall clock and in the event loop thread's CPU time."""
        self._idle_loop = True
        """Whether the loop had time to spare before the batch being written (`_loop_had_idle_time`)."""
        self.emitted = 0
        self.written = 0
        self._spilled = 0
        self._dropped = 0
        self.build_failures = 0
        self.sink_failures: dict[str, int] = {sink.name: 0 for sink in self.sinks}

    @property
    def spilled(self) -> int:
        """Events written to a spill file instead of where they were going: by the bus (a full queue) or by a
        sink that could not take them (the store down, the HTTP endpoint given up)."""
        return self._spilled + sum(getattr(sink, "spilled", 0) for sink in self.sinks)

    @property
    def dropped(self) -> int:
        """Events lost: a full queue or a failed sink, and no spill file to take them."""
        return self._dropped + sum(getattr(sink, "dropped", 0) for sink in self.sinks)

    @property
    def depth(self) -> int:
        """Exchanges waiting for the writer."""
        return len(self._queue)

    def start(self) -> None:
        """Start the background writer (in the running event loop)."""
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="llmgate-usage-writer")

    def emit(self, exchange: Exchange) -> None:
        """Queue one finished request; never blocks (see the module docstring for a full queue)."""
        self.emitted += 1
        queue = self._queue
        if len(queue) >= self.max_queue:
            self._overflow(exchange)
            return
        queue.append(exchange)
        if len(queue) >= self.batch_size and self._wake is not None:
            self._wake.set()

    async def close(self) -> None:
        """Write everything still queued, stop the writer, close the sinks."""
        self._closing = True
        if self._task is not None:
            assert self._wake is not None
            self._wake.set()
            await self._task
            self._task = None
        else:
            await self._drain()
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception:
                logger.exception("usage sink {} failed to close", sink.name)

    async def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while not self._closing:
            try:
                async with asyncio.timeout(self.flush_s):
                    await wake.wait()
                full = True  # woken by a full batch: write whole batches; the rest waits to fill the next one
            except TimeoutError:
                full = False  # the flush is due: everything queued goes
            wake.clear()
            queued = len(self._queue)
            await self._write(queued - queued % self.batch_size if full else queued)
        await self._drain()

    async def _drain(self) -> None:
        """Write everything queued, including what arrives meanwhile (closing)."""
        while self._queue:
            await self._write(len(self._queue))

    async def _write(self, count: int) -> None:
        """Write the `count` oldest queued exchanges, batch by batch. What arrives while the sinks write waits for
        the next wake-up: draining it at once would, under load, make a transaction of a few rows for every
        batch written, and a transaction costs far more than a row.

        Events are built only for sinks: the observer (metrics) reads the exchanges themselves, so a gateway
        that logs no usage builds none."""
        queue = self._queue
        while count > 0 and queue:
            size = min(len(queue), self.batch_size, count)
            count -= size
            batch = [queue.popleft() for _ in range(size)]
            self._idle_loop = self._loop_had_idle_time()
            written: list[UsageEvent] = []
            for start in range(0, size, _SLICE):
                part = batch[start:start + _SLICE]
                if self.sinks and self._prepare is not None:
                    try:
                        await self._prepare(part)
                    except Exception:  # building goes on; an estimate that needs what failed to load fails alone
                        logger.exception("could not prepare {} usage event(s)", len(part))
                events = self._events(part) if self.sinks else None
                if self._observe is not None:
                    try:
                        self._observe(part, events)
                    except Exception:
                        logger.exception("could not count a batch of {} request(s) into the metrics", len(part))
                if events:
                    written += [event for event in events if event is not None]
                # after every slice, the last one too (the sinks' write comes next): let the requests that came
                # meanwhile in (module docstring)
                await asyncio.sleep(self.pause_s if self._unhurried() else 0)
            if written:
                unhurried = UNHURRIED.set(self._unhurried())  # the sinks may pace themselves too (pace.py)
                try:
                    await self._fan_out(written)
                finally:
                    UNHURRIED.reset(unhurried)

    def _unhurried(self) -> bool:
        """The writer can pause: the loop had idle time, and less than a batch waits."""
        return self._idle_loop and len(self._queue) < self.batch_size

    def _loop_had_idle_time(self) -> bool:
        """Whether the event loop's thread (the writer's own) was busy at most `BUSY_SHARE` of the time since the
        last batch began."""
        wall, cpu = time.monotonic(), time.thread_time()
        last_wall, last_cpu = self._last_batch
        self._last_batch = (wall, cpu)
        return cpu - last_cpu <= BUSY_SHARE * (wall - last_wall)

    def _events(self, batch: list[Exchange]) -> list[UsageEvent | None]:
        """The batch's events, aligned with it (None where building one failed)."""
        events: list[UsageEvent | None] = []
        for exchange in batch:
            try:
                events.append(self._build(exchange))
            except Exception:
                events.append(None)
                self.build_failures += 1
                logger.exception("could not build the usage event of request {}", exchange.request_id.decode())
        return events

    async def _fan_out(self, events: list[UsageEvent]) -> None:
        results = await asyncio.gather(*(sink.write(events) for sink in self.sinks), return_exceptions=True)
        for sink, result in zip(self.sinks, results, strict=True):
            if isinstance(result, BaseException):
                self.sink_failures[sink.name] += 1
                logger.opt(exception=result).error("usage sink {} failed to write {} event(s)", sink.name,
                                                   len(events))
        self.written += len(events)

    def _overflow(self, exchange: Exchange) -> None:
        now = time.monotonic()
        spilled = False
        if self.spill_path is not None:
            try:
                line = _encode(self._build(exchange)) + b"\n"
                with Path(self.spill_path).open("ab") as spill:
                    spill.write(line)
                spilled = True
            except Exception as exc:
                logger.error("usage spill file {} failed: {}", self.spill_path, exc)
        if spilled:
            self._spilled += 1
        else:
            self._dropped += 1
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            logger.warning("usage event queue full ({} queued): {} spilled to {}, {} dropped so far",
                           len(self._queue), self.spilled, self.spill_path, self.dropped)
