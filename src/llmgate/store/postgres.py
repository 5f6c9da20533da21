"""The store on PostgreSQL through asyncpg (imported lazily): for several llmgate instances sharing tokens.

Migrations run under a transaction-scoped advisory lock, so instances starting together apply each once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

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
    summary_groups,
    summary_sql,
)
from llmgate.usage.event import UsageEvent

if TYPE_CHECKING:
    import asyncpg  # type: ignore[import-untyped]

_P_COLS = ", ".join(PROJECT_COLUMNS)
_T_COLS = ", ".join(TOKEN_COLUMNS)
_MIGRATION_LOCK = 0x11_6a7e  # any constant shared by all llmgate instances


class PostgresStore:
    """Store on PostgreSQL; `url` is a libpq-style postgresql:// URL."""

    dialect = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        import asyncpg

        self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=10)
        self.applied_on_open = await self.migrate()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "store is not open"
        return self._pool

    async def migrate(self) -> list[int]:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                               "applied_at DOUBLE PRECISION NOT NULL)")
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for version, sql in migrations(self.dialect):
                if version in done:
                    continue
                for statement in statements(sql):
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, time.time())
                applied.append(version)
            return applied

    async def create_project(self, project: Project) -> None:
        import asyncpg

        try:
            await self.pool.execute(f"INSERT INTO projects ({_P_COLS}) VALUES ({_marks(len(PROJECT_COLUMNS))})",
                                    *project_row(project))
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a project named {project.name!r} already exists") from None

    async def get_project(self, project_id: str) -> Project | None:
        row = await self.pool.fetchrow(f"SELECT {_P_COLS} FROM projects WHERE id = $1", project_id)
        return project_from_row(dict(row)) if row else None

    async def list_projects(self) -> list[Project]:
        rows = await self.pool.fetch(f"SELECT {_P_COLS} FROM projects ORDER BY created_at, id")
        return [project_from_row(dict(r)) for r in rows]

    async def update_project(self, project_id: str, changes: Mapping[str, Any], now: float) -> Project | None:
        import asyncpg

        check_changes(changes, PROJECT_UPDATABLE)
        try:
            row = await self._update("projects", _P_COLS, project_id, changes, now)
        except asyncpg.UniqueViolationError:
            raise Conflict(f"a project named {changes.get('name')!r} already exists") from None
        return project_from_row(dict(row)) if row else None

    async def delete_project(self, project_id: str, now: float) -> list[Token] | None:
        async with self.pool.acquire() as conn, conn.transaction():
            deleted = await conn.fetchval("DELETE FROM projects WHERE id = $1 RETURNING id", project_id)
            if deleted is None:
                return None
            await conn.execute("UPDATE tokens SET is_active = FALSE, revoked_at = $1, updated_at = $1 "
                               "WHERE project_id = $2 AND is_active", now, project_id)
            rows = await conn.fetch(f"SELECT {_T_COLS} FROM tokens WHERE project_id = $1", project_id)
        return [token_from_row(dict(r)) for r in rows]

    async def create_token(self, token: Token) -> None:
        await self.pool.execute(f"INSERT INTO tokens ({_T_COLS}) VALUES ({_marks(len(TOKEN_COLUMNS))})",
                                *token_row(token))

    async def get_token(self, token_id: str) -> Token | None:
        row = await self.pool.fetchrow(f"SELECT {_T_COLS} FROM tokens WHERE id = $1", token_id)
        return token_from_row(dict(row)) if row else None

    async def find_token(self, secret_hash: str) -> Token | None:
        row = await self.pool.fetchrow(f"SELECT {_T_COLS} FROM tokens WHERE secret_hash = $1", secret_hash)
        return token_from_row(dict(row)) if row else None

    async def has_tokens(self) -> bool:
        return await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM tokens)") is True

    async def list_tokens(self, project_id: str | None = None, is_active: bool | None = None) -> list[Token]:
        clauses, args = [], []
        for column, value in (("project_id", project_id), ("is_active", is_active)):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = await self.pool.fetch(f"SELECT {_T_COLS} FROM tokens{where} ORDER BY created_at, id", *args)
        return [token_from_row(dict(r)) for r in rows]

    async def update_token(self, token_id: str, changes: Mapping[str, Any], now: float) -> Token | None:
        check_changes(changes, TOKEN_UPDATABLE)
        row = await self._update("tokens", _T_COLS, token_id, changes, now)
        return token_from_row(dict(row)) if row else None

    async def revoke_token(self, token_id: str, now: float) -> Token | None:
        row = await self.pool.fetchrow(
            f"UPDATE tokens SET is_active = FALSE, revoked_at = COALESCE(revoked_at, $1), updated_at = $1 "
            f"WHERE id = $2 RETURNING {_T_COLS}", now, token_id)
        return token_from_row(dict(row)) if row else None

    async def rotate_token(self, token_id: str, secret_hash: str, prefix: str, now: float) -> Token | None:
        row = await self.pool.fetchrow(
            f"UPDATE tokens SET secret_hash = $1, prefix = $2, updated_at = $3 WHERE id = $4 AND is_active "
            f"RETURNING {_T_COLS}", secret_hash, prefix, now, token_id)
        return token_from_row(dict(row)) if row else None

    async def add_usage(self, deltas: Sequence[UsageDelta], project_deltas: Sequence[UsageDelta] = ()) -> None:
        if not deltas and not project_deltas:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            if deltas:
                await conn.executemany(_ADD_TOKEN_USAGE, [_delta_args(d) for d in deltas])
            if project_deltas:
                await conn.executemany(_ADD_PROJECT_USAGE, [_delta_args(d)[:5] for d in project_deltas])

    async def insert_usage(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(_INSERT_USAGE, event_rows(events))

    async def insert_usage_once(self, events: Sequence[UsageEvent]) -> None:
        if not events:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(_INSERT_USAGE_ONCE, event_rows(events))

    async def summarize_usage(self, query: UsageQuery) -> list[UsageGroup]:
        sql, args = summary_sql(query, self.dialect)
        rows = await self.pool.fetch(sql, *args)
        return summary_groups(query, [tuple(r) for r in rows])

    async def append_audit(self, entry: AuditEntry) -> None:
        await self.pool.execute(_INSERT_AUDIT, *audit_row(entry))

    async def list_audit(self, query: AuditQuery) -> list[AuditEntry]:
        sql, args = list_audit_sql(query, "$")
        return [audit_from_row(dict(r)) for r in await self.pool.fetch(sql, *args)]

    async def prune_audit(self, before: float) -> int:
        status = await self.pool.execute("DELETE FROM audit WHERE at < $1", before)
        return int(status.split()[-1])  # "DELETE <count>"

    async def _update(self, table: str, columns_sql: str, row_id: str, changes: Mapping[str, Any],
                      now: float) -> Any:
        columns = sorted(changes)  # names come from the *_UPDATABLE allowlists, never from the client
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate([*columns, "updated_at"], start=1))
        args = [encode_value(c, changes[c]) for c in columns]
        return await self.pool.fetchrow(
            f"UPDATE {table} SET {sets} WHERE id = ${len(columns) + 2} RETURNING {columns_sql}", *args, now, row_id)


_INSERT_AUDIT = insert_audit_sql("$")
_INSERT_USAGE = insert_sql("$")
_INSERT_USAGE_ONCE = insert_once_sql("$")
_PERIOD_SUMS = ", ".join(
    f"{c} = CASE WHEN period_start = $4 THEN {c} + ${i} WHEN period_start < $4 THEN ${i} ELSE {c} END"
    for i, c in ((1, "request_count"), (2, "tokens_used"), (3, "cost_used")))
# $1 requests, $2 tokens, $3 cost, $4 the delta's period start, $5 the id, $6 when last used
_ADD_PROJECT_USAGE = f"UPDATE projects SET {_PERIOD_SUMS}, period_start = GREATEST(period_start, $4) WHERE id = $5"
_ADD_TOKEN_USAGE = (f"UPDATE tokens SET {_PERIOD_SUMS}, period_start = GREATEST(period_start, $4), "
                    "last_used_at = GREATEST(COALESCE(last_used_at, 0), $6) WHERE id = $5")


def _delta_args(d: UsageDelta) -> tuple[Any, ...]:
    return (d.requests, d.tokens, d.cost, d.period_start, d.token_id, d.last_used_at)


def _marks(count: int) -> str:
    return ", ".join(f"${i}" for i in range(1, count + 1))
