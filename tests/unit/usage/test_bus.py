"""The event bus with real sinks: batches fan out, a failing sink does not stop the others, a full queue spills."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from llmgate.usage.account import EventBuilder
from llmgate.usage.bus import EventBus
from llmgate.usage.event import Exchange
from llmgate.usage.sinks.jsonl import JsonlSink


def exchange(n: int) -> Exchange:
    ex = Exchange(b"req-%d" % n, "POST", "/v1/chat/completions")
    ex.status, ex.ended_at = 200, ex.started_at
    return ex


def ids(path: Path) -> list[str]:
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


def test_a_full_queue_spills_and_a_failing_sink_does_not_stop_the_others(tmp_path: Path) -> None:
    good = JsonlSink(str(tmp_path / "good.jsonl"), 1 << 20, 1)
    full = JsonlSink("/dev/full", 1 << 20, 1)  # every write fails: ENOSPC, a full disk
    full.name = "full-disk"
    spill = tmp_path / "spill.jsonl"
    bus = EventBus([full, good], EventBuilder(dict), max_queue=3, batch_size=2, flush_s=0.01,
                   spill_path=str(spill))

    async def scenario() -> None:
        bus.start()
        for n in range(5):  # before the writer runs: 3 fit in the queue, 2 spill
            bus.emit(exchange(n))
        await asyncio.sleep(0.05)
        bus.emit(exchange(5))
        await bus.close()

    asyncio.run(scenario())
    assert ids(spill) == ["req-3", "req-4"]
    assert ids(tmp_path / "good.jsonl") == ["req-0", "req-1", "req-2", "req-5"]
    assert (bus.emitted, bus.spilled, bus.dropped, bus.written) == (6, 2, 0, 4)
    assert bus.sink_failures == {"full-disk": 3, "jsonl": 0}  # batches [0, 1], [2], [5]
