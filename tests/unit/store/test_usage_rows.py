"""The SQLite usage rows' own writer (apsw): connected by its first batch, its rows read by the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from llmgate.store.sqlite import SqliteStore
from llmgate.store.usage import UsageQuery
from llmgate.usage.event import UsageEvent


def test_the_writer_connects_with_its_first_batch(tmp_path: Path) -> None:
    async def scenario() -> None:
        store = SqliteStore(str(tmp_path / "llmgate.db"))
        await store.open()
        writer = store._usage_rows
        assert writer is not None and writer._db is None  # start-up opened nothing for it
        await store.insert_usage([UsageEvent("req-1", 1.0, "POST", "/v1/chat/completions", 200, stream=True,
                                             prompt_tokens=3, completion_tokens=4, total_tokens=7)])
        assert writer._db is not None
        [total] = await store.summarize_usage(UsageQuery())
        assert (total.requests, total.total_tokens) == (1, 7)
        await store.close()
        assert store._usage_rows is None

    asyncio.run(scenario())
