"""The SQLite usage rows' own writer (apsw): connected by its first batch, its rows read by the store, a batch
written whole or not at all."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import apsw
import msgspec
import pytest

from llmgate.store.sqlite import SqliteStore
from llmgate.store.usage import USAGE_COLUMNS, UsageQuery, insert_sql
from llmgate.store.usage_rows import ROWS_PER_STATEMENT
from llmgate.usage.event import UsageEvent
from llmgate.usage.pace import UNHURRIED


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


def _event(i: int) -> UsageEvent:
    """Events that differ in every kind of column: ints, floats, None, bools, text."""
    return UsageEvent(f"req-{i}", 1000.0 + i, "POST", "/v1/chat/completions", 200 if i % 7 else 502,
                      stream=bool(i % 2), model=f"m-{i % 3}", project_id=None if i % 4 else f"p-{i}",
                      attempts=i % 3, duration_ms=i / 8, prompt_tokens=i, completion_tokens=None if i % 5 else 2 * i,
                      total_tokens=3 * i, estimated=i % 3 == 0, cost=i / 1000 if i % 2 else None,
                      upstream_request_id=f"up-{i}", error=None if i % 7 else "upstream_error")


def _rows(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT {', '.join(USAGE_COLUMNS)} FROM usage ORDER BY time").fetchall()


def test_a_batch_of_any_size_lands_whole_and_in_order(tmp_path: Path) -> None:
    """Batches of ROWS_PER_STATEMENT rows a statement and a remainder of single rows: every row, every value."""
    path = tmp_path / "llmgate.db"
    sizes = [1, ROWS_PER_STATEMENT, 2 * ROWS_PER_STATEMENT + 5, ROWS_PER_STATEMENT - 1]

    async def scenario() -> None:
        store = SqliteStore(str(path))
        await store.open()
        first = 0
        for size in sizes:
            await store.insert_usage([_event(i) for i in range(first, first + size)])
            first += size
        await store.close()

    asyncio.run(scenario())
    expected = [tuple(int(v) if isinstance(v, bool) else v for v in msgspec.structs.astuple(_event(i)))
                for i in range(sum(sizes))]
    assert _rows(path) == expected


def test_a_batch_that_fails_leaves_no_row(tmp_path: Path) -> None:
    """One bad row in the last statement of a batch: the whole batch is rolled back, the next one still lands."""
    path = tmp_path / "llmgate.db"

    async def scenario() -> None:
        store = SqliteStore(str(path))
        await store.open()
        bad = [_event(i) for i in range(2 * ROWS_PER_STATEMENT + 3)]
        bad[-1].method = None  # type: ignore[assignment]  # NOT NULL: SQLite refuses the row
        with pytest.raises(apsw.ConstraintError):
            await store.insert_usage(bad)
        await store.insert_usage([_event(100)])
        await store.close()

    asyncio.run(scenario())
    assert [row[0] for row in _rows(path)] == ["req-100"]


def test_the_writer_thread_sleeps_between_statements_only_while_the_log_keeps_up_in_one_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the usage writer keeps up, a pause between two statements of a batch (the event loop's thread gets
    the core), and a reader sees none of the batch's rows until all of them are in; none when it is behind."""
    import llmgate.store.usage_rows as usage_rows

    path = tmp_path / "llmgate.db"
    seen_meanwhile: list[int] = []

    def sleep(delay: float) -> None:  # in the writer's thread, between two statements
        with sqlite3.connect(path) as db:
            seen_meanwhile.append(db.execute("SELECT count(*) FROM usage").fetchone()[0])
        assert delay == usage_rows.PAUSE_S

    monkeypatch.setattr(usage_rows, "time", type("Time", (), {"sleep": staticmethod(sleep)}))

    async def scenario() -> None:
        store = SqliteStore(str(path))
        await store.open()
        await store.insert_usage([_event(i) for i in range(3 * ROWS_PER_STATEMENT + 2)])  # the writer behind
        assert seen_meanwhile == []
        UNHURRIED.set(True)  # as the event bus says while it keeps up
        await store.insert_usage([_event(i) for i in range(100, 100 + 3 * ROWS_PER_STATEMENT + 2)])
        await store.close()

    asyncio.run(scenario())
    # three statements: two pauses, the batch not yet visible (only the first, unhurried one)
    assert seen_meanwhile == [3 * ROWS_PER_STATEMENT + 2] * 2
    assert len(_rows(path)) == 2 * (3 * ROWS_PER_STATEMENT + 2)


def test_the_insert_of_several_rows_numbers_postgres_marks_across_rows() -> None:
    width = len(USAGE_COLUMNS)
    second = "(" + ", ".join(f"${i}" for i in range(width + 1, 2 * width + 1)) + ")"
    assert insert_sql("$", 2).endswith(f"${width}), {second}")
    assert insert_sql("?", 3).count("?") == 3 * width
