"""The event bus: batching, fan-out, a failing sink, a full queue, draining on close."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import msgspec
import pytest

from llmgate.usage.account import EventBuilder
from llmgate.usage.bus import EventBus
from llmgate.usage.event import Exchange, UsageEvent, build_event
from llmgate.usage.pace import UNHURRIED
from llmgate.usage.sinks.jsonl import JsonlSink

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ListSink:
    def __init__(self, name: str = "list", fail: bool = False, delay_s: float = 0.0) -> None:
        self.name = name
        self.fail = fail
        self.delay_s = delay_s
        self.batches: list[list[UsageEvent]] = []
        self.closed = False

    async def write(self, events: Sequence[UsageEvent]) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail:
            raise OSError("disk full")
        self.batches.append(list(events))

    async def close(self) -> None:
        self.closed = True

    @property
    def ids(self) -> list[str]:
        return [event.request_id for batch in self.batches for event in batch]


def finished(n: int, status: int = 200) -> Exchange:
    exchange = Exchange(b"req-%d" % n, "POST", "/v1/chat/completions")
    exchange.status = status
    exchange.ended_at = exchange.started_at + 0.01
    return exchange


async def test_batches_by_size_and_fans_out_to_every_sink() -> None:
    first, second = ListSink("a"), ListSink("b")
    bus = EventBus([first, second], build_event, batch_size=10, flush_s=60)
    bus.start()
    for n in range(25):
        bus.emit(finished(n))
    await asyncio.sleep(0.05)  # a full batch woke the writer (timer: 60 s): whole batches go, the rest waits
    assert [len(batch) for batch in first.batches] == [10, 10]
    await bus.close()  # closing writes the rest
    assert [len(batch) for batch in first.batches] == [10, 10, 5]
    assert first.ids == second.ids == [f"req-{n}" for n in range(25)]
    assert first.closed and second.closed
    assert bus.written == 25 and bus.depth == 0


async def test_the_observer_sees_every_exchange_and_events_only_when_sinks_need_them() -> None:
    seen: list[tuple[list[bytes], list[str | None] | None]] = []

    def observe(exchanges: Sequence[Exchange], events: Sequence[UsageEvent | None] | None) -> None:
        seen.append(([e.request_id for e in exchanges],
                     None if events is None else [e.request_id if e is not None else None for e in events]))

    def build(exchange: Exchange) -> UsageEvent:
        if exchange.request_id == b"req-1":
            raise ValueError("unbuildable")
        return build_event(exchange)

    bare = EventBus([], build, observe=observe, flush_s=60)  # no usage sink: nothing is built
    for n in range(3):
        bare.emit(finished(n))
    await bare.close()
    sink = ListSink()
    logged = EventBus([sink], build, observe=observe, flush_s=60)
    for n in range(3):
        logged.emit(finished(n))
    await logged.close()
    assert seen == [([b"req-0", b"req-1", b"req-2"], None),
                    ([b"req-0", b"req-1", b"req-2"], ["req-0", None, "req-2"])]  # aligned; a failed build is None
    assert sink.ids == ["req-0", "req-2"] and logged.build_failures == 1


async def test_flushes_on_the_timer() -> None:
    sink = ListSink()
    bus = EventBus([sink], build_event, batch_size=100, flush_s=0.02)
    bus.start()
    bus.emit(finished(1))
    await asyncio.sleep(0.2)
    assert sink.ids == ["req-1"]
    await bus.close()


async def test_a_failing_sink_does_not_stop_the_others() -> None:
    broken, good = ListSink("broken", fail=True), ListSink("good")
    bus = EventBus([broken, good], build_event, batch_size=5, flush_s=60)
    bus.start()
    for n in range(12):
        bus.emit(finished(n))
    await bus.close()
    assert len(good.ids) == 12
    assert bus.sink_failures == {"broken": 3, "good": 0}


async def test_a_full_queue_spills_to_jsonl_and_counts(tmp_path: Path) -> None:
    spill = tmp_path / "spill.jsonl"
    sink = ListSink()
    bus = EventBus([sink], build_event, max_queue=3, batch_size=100, flush_s=60, spill_path=str(spill))
    for n in range(5):  # the writer is not running: the queue fills up
        bus.emit(finished(n))
    assert bus.depth == 3 and bus.spilled == 2 and bus.dropped == 0
    lines = spill.read_bytes().splitlines()
    assert [msgspec.json.decode(line)["request_id"] for line in lines] == ["req-3", "req-4"]
    await bus.close()
    assert sink.ids == ["req-0", "req-1", "req-2"]


async def test_without_a_spill_file_overflow_is_counted_as_dropped(tmp_path: Path) -> None:
    bus = EventBus([ListSink()], build_event, max_queue=1, spill_path=str(tmp_path / "missing" / "spill.jsonl"))
    bus.emit(finished(1))
    bus.emit(finished(2))
    assert bus.dropped == 1 and bus.spilled == 0
    await bus.close()


async def test_what_arrives_while_a_batch_is_written_waits_for_a_full_batch_or_the_flush() -> None:
    sink = ListSink(delay_s=0.05)
    bus = EventBus([sink], build_event, batch_size=10, flush_s=0.4)
    bus.start()
    for n in range(10):
        bus.emit(finished(n))
    await asyncio.sleep(0.01)  # the first batch is being written
    for n in range(10, 13):
        bus.emit(finished(n))
    await asyncio.sleep(0.1)  # written; the three that came meanwhile are not a batch of their own yet
    assert [len(batch) for batch in sink.batches] == [10]
    for n in range(13, 20):
        bus.emit(finished(n))
    await asyncio.sleep(0.1)
    assert [len(batch) for batch in sink.batches] == [10, 10]
    bus.emit(finished(20))
    await asyncio.sleep(0.6)  # the flush timer writes what is left
    assert [len(batch) for batch in sink.batches] == [10, 10, 1]
    await bus.close()
    assert sink.ids == [f"req-{n}" for n in range(21)]


async def test_close_drains_what_a_slow_sink_has_not_written_yet() -> None:
    sink = ListSink(delay_s=0.01)
    bus = EventBus([sink], build_event, batch_size=7, flush_s=60)
    bus.start()
    for n in range(50):
        bus.emit(finished(n))
    await bus.close()
    assert sink.ids == [f"req-{n}" for n in range(50)]


async def test_an_event_that_cannot_be_built_is_counted_and_skipped() -> None:
    def build(exchange: Exchange) -> UsageEvent:
        if exchange.request_id == b"req-1":
            raise ValueError("broken")
        return build_event(exchange)

    sink = ListSink()
    bus = EventBus([sink], build, flush_s=60)
    for n in range(3):
        bus.emit(finished(n))
    await bus.close()
    assert sink.ids == ["req-0", "req-2"] and bus.build_failures == 1


async def test_without_sinks_nothing_is_built() -> None:
    built: list[Exchange] = []

    def build(exchange: Exchange) -> UsageEvent:
        built.append(exchange)
        return build_event(exchange)

    bus = EventBus([], build, flush_s=60)
    bus.start()
    bus.emit(finished(1))
    await bus.close()
    assert built == [] and bus.depth == 0


async def test_each_slice_is_prepared_before_it_is_built_and_a_failed_preparation_does_not_lose_it() -> None:
    steps: list[str] = []

    async def prepare(batch: Sequence[Exchange]) -> None:
        steps.append(f"prepare {len(batch)}")
        if len(steps) == 1:
            raise RuntimeError("an encoding failed to load")

    def build(exchange: Exchange) -> UsageEvent:
        steps.append("build")
        return build_event(exchange)

    sink = ListSink()
    bus = EventBus([sink], build, prepare=prepare, batch_size=12, flush_s=60, pause_s=0)
    bus.start()
    for n in range(14):
        bus.emit(finished(n))
    await bus.close()
    assert steps == ["prepare 10", *["build"] * 10, "prepare 2", *["build"] * 2, "prepare 2", *["build"] * 2]
    assert sink.ids == [f"req-{n}" for n in range(14)]


def exchange(n: int) -> Exchange:
    ex = Exchange(b"req-%d" % n, "POST", "/v1/chat/completions")
    ex.status, ex.ended_at = 200, ex.started_at
    return ex


def ids(path: Path) -> list[str]:
    return [json.loads(line)["request_id"] for line in path.read_text().splitlines()]


def test_with_real_sinks_a_full_queue_spills_and_a_full_disk_does_not_stop_the_others(tmp_path: Path) -> None:
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


async def test_a_batch_is_built_in_slices_that_let_requests_run_between_them() -> None:
    """Building 500 events is milliseconds of CPU: requests must not wait for all of it. The sink still gets the
    whole batch in one write, and the metrics see every exchange once."""
    order: list[str] = []
    observed: list[int] = []

    def build(exchange: Exchange) -> UsageEvent:
        order.append("build")
        return build_event(exchange)

    sink = ListSink()
    bus = EventBus([sink], build, observe=lambda batch, events: observed.append(len(batch)), batch_size=200,
                   flush_s=60)
    bus.start()
    for n in range(200):
        bus.emit(finished(n))

    async def request() -> None:  # a request arriving while the writer works
        for _ in range(3):
            order.append("request")
            await asyncio.sleep(0)

    await asyncio.gather(request(), asyncio.sleep(0.05))
    await bus.close()
    between = [i for i, step in enumerate(order) if step == "request" and 0 < order[:i].count("build") < 200]
    assert between, order  # a request ran while the batch was being built
    assert order.count("build") == 200 and sum(observed) == 200 and set(observed) == {10}
    assert [len(batch) for batch in sink.batches] == [200]


class RecordedSleeps:
    """`asyncio` as the bus sees it, with its sleeps recorded."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __getattr__(self, name: str) -> object:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        await asyncio.sleep(delay)


async def test_slices_are_followed_by_a_pause_while_the_writer_keeps_up_and_not_once_it_falls_behind(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a loop with idle time, a real wait after each slice (a sleep(0) would not let the server's threads hand
    over the requests that came); none while a batch or more is still queued behind the one being built."""
    import llmgate.usage.bus as bus_module

    recorded = RecordedSleeps()
    monkeypatch.setattr(bus_module, "asyncio", recorded)
    monkeypatch.setattr(bus_module, "time", LoopClock(busy=False))
    sink = UnhurriedSink()
    bus = EventBus([sink], build_event, batch_size=30, flush_s=60, pause_s=0.002)
    for n in range(90):  # three batches queued before the writer starts
        bus.emit(finished(n))
    bus.start()
    await bus.close()
    # slices of 10, each followed by a pause (the last one before the sinks' write too): 60 and then 30 still
    # queued behind the first two batches (no pause), none behind the last
    assert recorded.sleeps == [0] * 6 + [0.002] * 3
    assert [len(batch) for batch in sink.batches] == [30, 30, 30]
    assert sink.unhurried == [False, False, True]  # what the sinks were told (pace.py)
    assert UNHURRIED.get() is False  # and only them


class LoopClock:
    """`time` as the bus sees it: a second passes at each look at the wall clock, in which the event loop's thread
    is busy throughout (`busy`) or not at all."""

    def __init__(self, busy: bool) -> None:
        self.busy = busy
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now

    def thread_time(self) -> float:
        return self.now if self.busy else 0.0


async def test_a_loop_with_no_idle_time_gets_no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pauses only move the work into more requests when the loop has no idle time to hide it in."""
    import llmgate.usage.bus as bus_module

    recorded = RecordedSleeps()
    monkeypatch.setattr(bus_module, "asyncio", recorded)
    monkeypatch.setattr(bus_module, "time", LoopClock(busy=True))
    sink = UnhurriedSink()
    bus = EventBus([sink], build_event, batch_size=30, flush_s=60, pause_s=0.002)
    for n in range(30):
        bus.emit(finished(n))
    bus.start()
    await bus.close()
    assert recorded.sleeps == [0, 0, 0]
    assert sink.unhurried == [False]


class UnhurriedSink(ListSink):
    """Records whether the bus said it keeps up, batch by batch."""

    def __init__(self) -> None:
        super().__init__()
        self.unhurried: list[bool] = []

    async def write(self, events: Sequence[UsageEvent]) -> None:
        self.unhurried.append(UNHURRIED.get())
        await super().write(events)


class SpillingSink(ListSink):
    """A sink that spilled some events itself (as the store and HTTP sinks do)."""

    spilled = 7
    dropped = 2


async def test_the_bus_counts_what_its_sinks_spilled_and_dropped() -> None:
    bus = EventBus([SpillingSink()], build_event)
    assert (bus.spilled, bus.dropped) == (7, 2)
