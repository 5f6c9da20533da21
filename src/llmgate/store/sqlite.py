"""The embedded store: SQLite through aiosqlite, WAL, one file under the data dir.

One connection and one lock: SQLite allows one writer at a time anyway, and each method is one transaction
(`BEGIN IMMEDIATE` for writes, so a concurrent writer in another process waits instead of failing).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import aiosqlite

from llmgate.store.audit import AuditEntry, AuditQuery, audit_from_row, audit_row, insert_audit_sql, list_audit_sql
from llmgate.store.base import (
    PROJECT_COLUMNS,
    PROJECT_UPDATABLE,
    TOKEN_COLUMNS,
    TOKEN_UPDATABLE,
    Conflict,
    Project,
    Token,
    UsageDelta,
    check_changes,
    encode_value,
    project_from_row,
    project_row,
    token_from_row,
    token_row,
)
from llmgate.store.migrations import migrations, statements
from llmgate.store.usage import (
    UsageGroup,
    UsageQuery,
    event_rows,
    insert_once_sql,
    insert_sql,
    latency_sql,
    summary_groups,
    summary_sql,
)
from llmgate.store.usage_rows import ROWS_PER_STATEMENT, UsageRowWriter
from llmgate.usage.event import UsageEvent

_P_COLS = ", ".join(PROJECT_COLUMNS)
_T_COLS = ", ".join(TOKEN_COLUMNS)

# The sqlite3 module binds only exact int, float, str and bytes directly: None and bool go through its adapter lookup,
# which for want of an adapter raises and clears an exception per value. A registered C-level adapter makes the lookup a
# dict hit; what gets bound is unchanged (NULL, and 0/1). Usage rows, the one insert made per request, skip sqlite3
# altogether (usage_rows.py).
sqlite3.register_adapter(type(None), cast("Callable[[None], None]", {}.get))  # {}.get(None) is None: NULL
sqlite3.register_adapter(bool, int)


class SqliteStore:
    """Store on a SQLite file (created with its directory when missing)."""

    dialect = "sqlite"

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._usage_rows: UsageRowWriter | None = None

    async def open(self) -> None:
        # Token hashes, usage and project keys: a new directory and database are the owner's alone (SQLite gives
        # its -wal and -shm files the database's permissions).
        Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.path != ":memory:" and not Path(self.path).exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        self._db.row_factory = aiosqlite.Row
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        self.applied_on_open = await self.migrate()
        self._usage_rows = UsageRowWriter(self.path, _INSERT_USAGE, _INSERT_USAGE_MANY)

    async def close(self) -> None:
        if self._usage_rows is not None:
            await self._usage_rows.close()
            self._usage_rows = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    @asynccontextmanager
    async def _tx(self, write: bool = True) -> AsyncIterator[aiosqlite.Connection]:
        assert self._db is not None, "store is not open"
        async with self._lock:
            if not write:
                yield self._db
                return
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            await self._db.execute("COMMIT")

    async def migrate(self) -> list[int]:
        async with self._tx() as db:
            await db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                             "applied_at REAL NOT NULL)")
            done = {row[0] async for row in await db.execute("SELECT version FROM schema_migrations")}
            applied = []
            for version, sql in migrations(self.dialect):
                if version in done:
                    continue
                for statement in statements(sql):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
                applied.append(version)
            return applied

    async def create_project(self, project: Project) -> None:
        async with self._tx() as db:
            try:
                await db.execute(f"INSERT INTO projects ({_P_COLS}) VALUES ({_marks(PROJECT_COLUMNS)})",
                                 project_row(project))
            except aiosqlite.IntegrityError:
                raise Conflict(f"a project named {project.name!r} already exists") from None

    async def get_project(self, project_id: str) -> Project | None:
        async with self._tx(write=False) as db:
            rows = await _fetch(db, f"SELECT {_P_COLS} FROM projects WHERE id = ?", (project_id,))
        return project_from_row(dict(rows[0])) if rows else None

    async def list_projects(self) -> list[Project]:
        async with self._tx(write=False) as db:
            rows = await _fetch(db, f"SELECT {_P_COLS} FROM projects ORDER BY created_at, id")
        return [project_from_row(dict(r)) for r in rows]

    async def update_project(self, project_id: str, changes: Mapping[str, Any], now: float) -> Project | None:
        check_changes(changes, PROJECT_UPDATABLE)
        async with self._tx() as db:
            try:
                await _update(db, "projects", project_id, changes, now)
            except aiosqlite.IntegrityError:
                raise Conflict(f"a project named {changes.get('name')!r} already exists") from None
            rows = await _fetch(db, f"SELECT {_P_COLS} FROM projects WHERE id = ?", (project_id,))
        return project_from_row(dict(rows[0])) if rows else None

    async def delete_project(self, project_id: str, now: float) -> list[Token] | None:
        async with self._tx() as db:
            cursor = await db.execute("DELETE FROM projects WHERE id = ?", (project_id,))
            if cursor.rowcount == 0:
                return None
            await db.execute("UPDATE tokens SET is_active = 0, revoked_at = ?, updated_at = ? "
                             "WHERE project_id = ? AND is_active = 1", (now, now, project_id))
            rows = await _fetch(db, f"SELECT {_T_COLS} FROM tokens WHERE project_id = ?", (project_id,))
        return [token_from_row(dict(r)) for r in rows]

    async def create_token(self, token: Token) -> None:
        async with self._tx() as db:
            await db.execute(f"INSERT INTO tokens ({_T_COLS}) VALUES ({_marks(TOKEN_COLUMNS)})", token_row(token))

    async def get_token(self, token_id: str) -> Token | None:
        return await self._one_token("id", token_id)

    async def find_token(self, secret_hash: str) -> Token | None:
        return await self._one_token("secret_hash", secret_hash)

    async def _one_token(self, column: str, value: str) -> Token | None:
        async with self._tx(write=False) as db:
            rows = await _fetch(db, f"SELECT {_T_COLS} FROM tokens WHERE {column} = ?", (value,))
        return token_from_row(dict(rows[0])) if rows else None

    async def has_tokens(self) -> bool:
        async with self._tx(write=False) as db:
            return bool(await _fetch(db, "SELECT 1 FROM tokens LIMIT 1"))

    async def list_tokens(self, project_id: str | None = None, is_active: bool | None = None) -> list[Token]:
        where, args = _token_filter(project_id, is_active, "?")
        async with self._tx(write=False) as db:
            rows = await _fetch(db, f"SELECT {_T_COLS} FROM tokens{where} ORDER BY created_at, id", args)
        return [token_from_row(dict(r)) for r in rows]

    async def update_token(self, token_id: str, changes: Mapping[str, Any], now: float) -> Token | None:
        check_changes(changes, TOKEN_UPDATABLE)
        async with self._tx() as db:
            await _update(db, "tokens", token_id, changes, now)
            rows = await _fetch(db, f"SELECT {_T_COLS} FROM tokens WHERE id = ?", (token_id,))
        return token_from_row(dict(rows[0])) if rows else None

    async def revoke_token(self, token_id: str, now: float) -> Token | None:
        async with self._tx() as db:
            await db.execute("UPDATE tokens SET is_active = 0, revoked_at = COALESCE(revoked_at, ?), "
                             "updated_at = ? WHERE id = ?", (now, now, token_id))
            rows = await _fetch(db, f"SELECT {_T_COLS} FROM tokens WHERE id = ?", (token_id,))
        return token_from_row(dict(rows[0])) if rows else None

    async def rotate_token(self, token_id: str, secret_hash: str, prefix: str, now: float) -> Token | None:
        async with self._tx() as db:
            cursor = await db.execute("UPDATE tokens SET secret_hash = ?, prefix = ?, updated_at = ? "
                                      "WHERE id = ? AND is_active = 1", (secret_hash, prefix, now, token_id))
            if cursor.rowcount == 0:
                return None
            rows = await _fetch(db, f"SELECT {_T_COLS} FROM tokens WHERE id = ?", (token_id,))
        return token_from_row(dict(rows[0]))

    async def add_usage(self, deltas: Sequence[UsageDelta], project_deltas: Sequence[UsageDelta] = ()) -> None:
        if not deltas and not project_deltas:
            return
        async with self._tx() as db:
            if deltas:
                await db.executemany(_ADD_TOKEN_USAGE, [_delta_args(d) for d in deltas])
            if project_deltas:
                await db.executemany(_ADD_PROJECT_USAGE, [_delta_args(d)[:5] for d in project_deltas])

    async def insert_usage(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        assert self._usage_rows is not None, "store is not open"
        async with self._lock:  # one writer at a time in this process: the two connections never wait for each other
            await self._usage_rows.insert(event_rows(events))

    async def insert_usage_once(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        assert self._usage_rows is not None, "store is not open"
        async with self._lock:
            await self._usage_rows.insert_each(_INSERT_USAGE_ONCE, event_rows(events))

    async def summarize_usage(self, query: UsageQuery) -> list[UsageGroup]:
        sql, args = summary_sql(query, self.dialect)
        async with self._tx(write=False) as db:
            rows = await _fetch(db, sql, args)
            latencies: dict[Any, tuple[list[float], list[float]]] = {}
            sql, args = latency_sql(query)
            async with db.execute(sql, args) as cursor:
                async for key, duration, overhead in cursor:
                    durations, overheads = latencies.setdefault(key, ([], []))
                    durations.append(duration)
                    overheads.append(overhead)
        return summary_groups(query, rows, latencies)


    async def append_audit(self, entry: AuditEntry) -> None:
        async with self._tx() as db:
            await db.execute(_INSERT_AUDIT, audit_row(entry))

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        sql, args = list_audit_sql(query, "?")
        async with self._tx(write=False) as db:
            rows = await _fetch(db, sql, args)
        return [audit_from_row(dict(r)) for r in rows]

    async def prune_audit(self, before: float) -> int:
        async with self._tx(write=False) as db:  # most checks find nothing: no write lock for them
            if not await _fetch(db, "SELECT 1 FROM audit WHERE at < ? LIMIT 1", (before,)):
                return 0
        async with self._tx() as db:
            cursor = await db.execute("DELETE FROM audit WHERE at < ?", (before,))
            return cursor.rowcount


_INSERT_AUDIT = insert_audit_sql("?")
_INSERT_USAGE = insert_sql("?")
_INSERT_USAGE_ONCE = insert_once_sql("?")
_PERIOD_SUMS = ", ".join(
    f"{c} = CASE WHEN period_start = ?4 THEN {c} + ?{i} WHEN period_start < ?4 THEN ?{i} ELSE {c} END"
    for i, c in ((1, "request_count"), (2, "tokens_used"), (3, "cost_used")))
# ?1 requests, ?2 tokens, ?3 cost, ?4 the delta's period start, ?5 the id, ?6 when last used
_ADD_PROJECT_USAGE = f"UPDATE projects SET {_PERIOD_SUMS}, period_start = MAX(period_start, ?4) WHERE id = ?5"
_ADD_TOKEN_USAGE = (f"UPDATE tokens SET {_PERIOD_SUMS}, period_start = MAX(period_start, ?4), "
                    "last_used_at = MAX(COALESCE(last_used_at, 0), ?6) WHERE id = ?5")


def _delta_args(d: UsageDelta) -> tuple[Any, ...]:
    return (d.requests, d.tokens, d.cost, d.period_start, d.token_id, d.last_used_at)
_INSERT_USAGE_MANY = insert_sql("?", ROWS_PER_STATEMENT)


def _marks(columns: Sequence[str]) -> str:
    return ", ".join("?" for _ in columns)


def _token_filter(project_id: str | None, is_active: bool | None, mark: str) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if project_id is not None:
        clauses.append(f"project_id = {mark}")
        args.append(project_id)
    if is_active is not None:
        clauses.append(f"is_active = {mark}")
        args.append(is_active)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


async def _update(db: aiosqlite.Connection, table: str, row_id: str, changes: Mapping[str, Any],
                  now: float) -> None:
    columns = sorted(changes)  # names come from the *_UPDATABLE allowlists, never from the client
    sets = ", ".join(f"{c} = ?" for c in [*columns, "updated_at"])
    args = [encode_value(c, changes[c]) for c in columns]
    await db.execute(f"UPDATE {table} SET {sets} WHERE id = ?", [*args, now, row_id])


async def _fetch(db: aiosqlite.Connection, sql: str, args: Sequence[Any] = ()) -> list[aiosqlite.Row]:
    return list(await db.execute_fetchall(sql, args))
