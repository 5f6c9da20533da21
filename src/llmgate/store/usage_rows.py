"""The SQLite usage table's batched inserts, through apsw on a connection and a thread of their own.

Every logged request becomes a row, so the insert's cost per row is the usage log's largest single cost. The
sqlite3 module (under aiosqlite) binds each value through its adapter protocol when it is not an exact int,
float, str or bytes: every None and bool of a row builds a key tuple, looks it up and calls the adapter
(~1.3k instructions each, ~7 a row), and its executemany spends ~20k of a row's ~35.7k instructions before
SQLite itself runs. apsw binds None, bool, int, float and str directly: 20.9k instructions a row for the same
24 columns and indexes (cachegrind, 20,000 rows in batches of 500; benchmarks/README.md).

The rest of the store stays on aiosqlite. Both connections use the same file in WAL mode; each write is a
`BEGIN IMMEDIATE` transaction with a busy timeout, so a writer waits for the other instead of failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import apsw

BUSY_TIMEOUT_MS = 5000


class UsageRowWriter:
    """Inserts batches of usage rows in one transaction each, on one worker thread (apsw releases the GIL
    while SQLite runs). It connects with its first batch: a gateway that logs no usage (the default) never
    imports apsw nor starts the thread, and start-up pays for neither."""

    def __init__(self, path: str, insert_sql: str) -> None:
        self.path = path
        self.insert_sql = insert_sql
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="llmgate-usage-rows")
        self._db: apsw.Connection | None = None

    async def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        await self._run(self._insert, rows)

    async def close(self) -> None:
        if self._db is not None:  # the worker thread's own, closed there
            await self._run(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _connect(self) -> apsw.Connection:
        """The connection (opened after the store's migrations: the table exists, WAL mode is kept in the file)."""
        import apsw  # only a SQLite store that logs usage needs it

        db = apsw.Connection(self.path)
        db.set_busy_timeout(BUSY_TIMEOUT_MS)
        db.execute("PRAGMA synchronous=NORMAL")  # per connection, as the store's own
        self._db = db
        return db

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        db = self._db if self._db is not None else self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(self.insert_sql, rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
