"""The SQLite usage table's batched inserts, through apsw on a connection and a thread of their own.

Every logged request becomes a row, so the insert's cost per row is the usage log's largest single cost
(benchmarks/README.md has the figures):
- apsw binds None, bool, int, float and str directly, where the sqlite3 module (under aiosqlite) sends every
  None and bool through its adapter protocol.
- Rows go `ROWS_PER_STATEMENT` to an INSERT (its VALUES one after the other): a statement's step, reset and
  clearing of bindings is paid once for many rows, and apsw hands the GIL over once a statement rather than
  once a row (each time waiting for the event loop's thread to let go of it).
- While the usage writer keeps up (`UNHURRIED`, usage/pace.py), the worker thread sleeps `PAUSE_S` between two
  statements of a batch: run back to back, a batch's statements are a third of a millisecond of CPU on end,
  which the event loop's thread (on the same core, when the gateway is pinned to one) would wait out with a
  request in hand. The transaction stays open meanwhile; the store's other writes in this process wait for the
  batch anyway (its lock), another process's retry. Under full load it does not pause: each pause costs the
  thread a wait for the GIL, and the log would fall behind.
- The connection is opened without SQLite's own mutex (`SQLITE_OPEN_NOMUTEX`), which every bind would take and
  release: safe because only the writer's one thread ever touches the connection.

The rest of the store stays on aiosqlite. Both connections use the same file in WAL mode; each write is a
`BEGIN IMMEDIATE` transaction with a busy timeout, so a writer waits for the other instead of failing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import chain
from typing import TYPE_CHECKING, Any

from llmgate.usage.pace import UNHURRIED

if TYPE_CHECKING:
    import apsw

BUSY_TIMEOUT_MS = 5000
ROWS_PER_STATEMENT = 20
PAUSE_S = 0.0005
"""The worker thread's sleep between two statements of a batch while the usage writer keeps up (module
docstring)."""


class UsageRowWriter:
    """Inserts batches of usage rows in one transaction each, on one worker thread (apsw releases the GIL
    while SQLite runs). It connects with its first batch: a gateway that logs no usage (the default) never
    imports apsw nor starts the thread, and start-up pays for neither."""

    def __init__(self, path: str, insert_sql: str, insert_many_sql: str) -> None:
        """`insert_sql`: the INSERT of one row; `insert_many_sql`: of `ROWS_PER_STATEMENT` rows."""
        self.path = path
        self.insert_sql = insert_sql
        self.insert_many_sql = insert_many_sql
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="llmgate-usage-rows")
        self._db: apsw.Connection | None = None

    async def insert(self, rows: Sequence[tuple[Any, ...]]) -> None:
        await self._run(self._insert, rows, PAUSE_S if UNHURRIED.get() else 0.0)

    async def insert_each(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Run `sql` once per row, in one transaction (an insert with a condition of its own)."""
        await self._run(self._insert_each, sql, rows)

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

        db = apsw.Connection(self.path, flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_NOMUTEX)
        db.set_busy_timeout(BUSY_TIMEOUT_MS)
        db.execute("PRAGMA synchronous=NORMAL")  # per connection, as the store's own
        self._db = db
        return db

    def _insert(self, rows: Sequence[tuple[Any, ...]], pause_s: float) -> None:
        whole = len(rows) - len(rows) % ROWS_PER_STATEMENT
        statements = [tuple(chain.from_iterable(rows[start:start + ROWS_PER_STATEMENT]))
                      for start in range(0, whole, ROWS_PER_STATEMENT)]
        with self._transaction() as db:
            for n, values in enumerate(statements):
                if n and pause_s:
                    time.sleep(pause_s)  # let the event loop's thread run (module docstring)
                db.execute(self.insert_many_sql, values)
            if whole < len(rows):
                db.executemany(self.insert_sql, rows[whole:])

    def _insert_each(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with self._transaction() as db:
            db.executemany(sql, rows)

    @contextmanager
    def _transaction(self) -> Iterator[apsw.Connection]:
        db = self._db if self._db is not None else self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
