"""The loop-lag sampler sees a loop that was blocked."""

from __future__ import annotations

import asyncio
import time

from llmgate.observe.lag import LoopLag


def test_samples_a_blocked_loop() -> None:
    async def scenario() -> tuple[float, float]:
        lag = LoopLag(interval_s=0.01)
        lag.start()
        await asyncio.sleep(0.03)
        time.sleep(0.2)  # block the loop on purpose
        await asyncio.sleep(0.03)
        await lag.stop()
        return lag.peak_s, lag.lag_s

    peak, latest = asyncio.run(scenario())
    assert peak >= 0.15  # the sample taken after the block was ~0.2 s late
    assert latest < peak


def test_record_keeps_the_peak_and_the_latest() -> None:
    lag = LoopLag()
    for sample in (0.001, 0.05, -0.001, 0.002):
        lag.record(sample)
    assert lag.peak_s == 0.05 and lag.lag_s == 0.002
