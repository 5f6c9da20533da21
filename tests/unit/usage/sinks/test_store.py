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
