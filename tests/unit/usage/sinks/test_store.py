"""The store sink (usage/sinks/store.py): a batch of usage events becomes rows of the store's usage table."""

from __future__ import annotations

import asyncio
from pathlib import Path

from llmgate.store.sqlite import SqliteStore
from llmgate.store.usage import UsageQuery
from llmgate.usage.event import UsageEvent
from llmgate.usage.sinks.store import StoreSink


def test_a_batch_becomes_rows_and_closing_leaves_the_store_open(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteStore(str(tmp_path / "usage.db"))
        await store.open()
        sink = StoreSink(store)
        events = [UsageEvent(request_id=f"r{n}", time=1_700_000_000.0 + n, method="POST",
                             endpoint="/v1/chat/completions", status=200 if n else 502, model="m",
                             project_id="p", total_tokens=10, prompt_tokens=6, completion_tokens=4)
                  for n in range(3)]
        await sink.write(events)
        await sink.close()
        [total] = await store.summarize_usage(UsageQuery(project_id="p"))  # the store is still open
        assert (total.requests, total.errors, total.total_tokens) == (3, 1, 30)
        await store.close()

    asyncio.run(main())


class DownStore(SqliteStore):
    """The real SQLite store, refusing writes while `down` (as a stopped PostgreSQL would)."""

    down = False

    async def insert_usage(self, events):  # type: ignore[no-untyped-def]
        if self.down:
            raise ConnectionRefusedError("the database is down")
        await super().insert_usage(events)


def events_from(start: int, count: int) -> list[UsageEvent]:
    return [UsageEvent(request_id=f"r{n}", time=1_700_000_000.0 + n, method="POST", endpoint="/v1/chat/completions",
                       status=200, model="m", project_id="p", total_tokens=1) for n in range(start, start + count)]


def test_batches_the_store_refuses_are_spilled_then_replayed_when_it_is_back(tmp_path: Path) -> None:
    async def main() -> None:
        store = DownStore(str(tmp_path / "usage.db"))
        await store.open()
        spill = tmp_path / "spill.jsonl.store"
        sink = StoreSink(store, str(spill))
        await sink.write(events_from(0, 2))
        store.down = True
        await sink.write(events_from(2, 600))  # more than a replay transaction
        await sink.write(events_from(602, 3))
        assert (sink.spilled, sink.dropped) == (603, 0) and len(spill.read_bytes().splitlines()) == 603
        assert oct(spill.stat().st_mode & 0o777) == "0o600"
        store.down = False
        await sink.write(events_from(605, 1))  # the store is back: this batch, then the spilled ones
        [total] = await store.summarize_usage(UsageQuery(project_id="p"))
        assert total.requests == 606 and sink.replayed == 603
        assert not spill.exists() and not Path(f"{spill}.replaying").exists()
        await store.close()

    asyncio.run(main())


def test_a_spill_file_left_by_a_previous_run_is_replayed_after_the_first_write(tmp_path: Path) -> None:
    async def main() -> None:
        store = DownStore(str(tmp_path / "usage.db"))
        await store.open()
        spill = tmp_path / "spill.jsonl.store"
        store.down = True
        await StoreSink(store, str(spill)).write(events_from(0, 4))  # the gateway stops with the store down
        store.down = False
        sink = StoreSink(store, str(spill))  # the next run
        await sink.write(events_from(4, 1))
        [total] = await store.summarize_usage(UsageQuery(project_id="p"))
        assert total.requests == 5 and not spill.exists()
        await store.close()

    asyncio.run(main())


def test_without_a_spill_file_a_refused_batch_is_counted_as_dropped(tmp_path: Path) -> None:
    async def main() -> None:
        store = DownStore(str(tmp_path / "usage.db"))
        await store.open()
        store.down = True
        sink = StoreSink(store)
        await sink.write(events_from(0, 3))
        assert (sink.spilled, sink.dropped) == (0, 3)
        await store.close()

    asyncio.run(main())


class LostAckStore(SqliteStore):
    """The real SQLite store whose next writes (`lost_acks` of the plain insert, `lost_replay_acks` of the
    replay's) commit and then raise, as a PostgreSQL whose connection breaks after the COMMIT reached it and
    before its acknowledgement came back."""

    lost_acks = 0
    lost_replay_acks = 0

    async def insert_usage(self, events):  # type: ignore[no-untyped-def]
        await super().insert_usage(events)
        if self.lost_acks:
            self.lost_acks -= 1
            raise ConnectionResetError("connection reset after the commit")

    async def insert_usage_once(self, events):  # type: ignore[no-untyped-def]
        await super().insert_usage_once(events)
        if self.lost_replay_acks:
            self.lost_replay_acks -= 1
            raise ConnectionResetError("connection reset after the commit")


def test_a_batch_stored_though_its_write_failed_is_not_stored_again_by_the_replay(tmp_path: Path) -> None:
    async def main() -> None:
        store = LostAckStore(str(tmp_path / "usage.db"))
        await store.open()
        spill = tmp_path / "spill.jsonl.store"
        sink = StoreSink(store, str(spill))
        store.lost_acks = 2
        await sink.write(events_from(0, 5))  # stored, yet spilled
        await sink.write(events_from(5, 2))  # the same
        assert sink.spilled == 7
        store.lost_replay_acks = 1
        await sink.write(events_from(7, 1))  # written; its replay of the 7 spilled commits and then fails
        assert sink.replayed == 0 and len(spill.read_bytes().splitlines()) == 7
        await sink.write(events_from(8, 1))  # written; the replay goes through
        assert sink.replayed == 7 and not spill.exists()
        [total] = await store.summarize_usage(UsageQuery(project_id="p"))
        assert total.requests == 9  # one row per event
        await store.close()

    asyncio.run(main())


class HungStore(SqliteStore):
    """The real SQLite store, whose writes never answer while `hung` (a frozen database server)."""

    hung = False

    async def insert_usage(self, events):  # type: ignore[no-untyped-def]
        if self.hung:
            await asyncio.get_running_loop().create_future()
        await super().insert_usage(events)


def test_a_hung_store_times_out_and_its_batch_is_spilled_then_replayed_once(tmp_path: Path) -> None:
    async def main() -> None:
        store = HungStore(str(tmp_path / "usage.db"))
        await store.open()
        try:
            spill = tmp_path / "spill.jsonl.store"
            sink = StoreSink(store, str(spill), timeout_s=0.2)
            store.hung = True
            started = asyncio.get_running_loop().time()
            await sink.write(events_from(0, 5))
            assert asyncio.get_running_loop().time() - started < 2  # not held by the hung store
            assert (sink.spilled, sink.dropped) == (5, 0) and len(spill.read_bytes().splitlines()) == 5
            store.hung = False
            await sink.write(events_from(5, 2))  # the store is back: the spilled batch follows, once
            [total] = await store.summarize_usage(UsageQuery(project_id="p"))
            assert total.requests == 7 and sink.replayed == 5
        finally:
            await store.close()

    asyncio.run(main())
