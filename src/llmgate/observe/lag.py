"""Event-loop lag: how late a timer fires is how long a request arriving now waits before its handler runs.

A handler-side timer starts only once the loop gets to the request, so it cannot see that queueing; this
monitor samples it instead, `interval_s` apart (10 Hz by default: no measurable idle CPU).
"""

from __future__ import annotations

import asyncio
import contextlib


class LoopLag:
    """Samples the running loop's lag; `lag_s` is the latest sample, `peak_s` the worst of the last ~10 s."""

    __slots__ = ("_recent", "_task", "interval_s", "lag_s", "peak_s")

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.lag_s = 0.0
        self.peak_s = 0.0
        self._recent: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="llmgate-loop-lag")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        keep = max(1, round(10 / self.interval_s))
        while True:
            due = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            self.record(loop.time() - due)
            if len(self._recent) > keep:
                del self._recent[: len(self._recent) - keep]

    def record(self, lag_s: float) -> None:
        """One sample (seconds late)."""
        lag_s = max(0.0, lag_s)
        self.lag_s = lag_s
        self._recent.append(lag_s)
        self.peak_s = max(self._recent)
