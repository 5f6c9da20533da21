"""The `audit` table's records and SQL, shared by both backends: append a row, list rows (filtered, newest
first, a page at a time), prune rows past the retention."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
from msgspec import Meta

AUDIT_COLUMNS = ("at", "actor", "client", "action", "target", "changes")


class AuditEntry(msgspec.Struct, kw_only=True, frozen=True):
    """One management action: when, who, from where, what, on what, and what changed."""

    id: int | None = None
    """The row's number (ascending with time); None before it is stored."""
    at: float
    """Unix seconds."""
    actor: str
    """`management_token`, `jwt:<sub>`, `admin:<user>` (the web UI), or `system` (a SIGHUP reload)."""
    client: str | None = None
    """The caller's address."""
    action: str
    """`project.create`, `token.rotate`, `config.reload`, `ui.sign_in`, ..."""
    target: str | None = None
    """The id of what was acted on (a project, a token, the config file, a user name)."""
    changes: dict[str, dict[str, Any]] = {}
    """field → {"before": ..., "after": ...} (one side absent when there is none); secrets masked."""


class AuditQuery(msgspec.Struct, kw_only=True, frozen=True):
    """Which rows (every filter optional; `from_time` inclusive, `to_time` exclusive), newest first; `before_id`
    continues a listing after its last row."""

    actor: str | None = None
    action: str | None = None
    target: str | None = None
    from_time: float | None = None
    to_time: float | None = None
    before_id: int | None = None
    limit: Annotated[int, Meta(ge=1, le=1001)] = 100


def audit_row(entry: AuditEntry) -> list[Any]:
    changes = msgspec.json.encode(entry.changes).decode()
    return [entry.at, entry.actor, entry.client, entry.action, entry.target, changes]


def audit_from_row(row: Mapping[str, Any]) -> AuditEntry:
    data = dict(row)
    data["changes"] = msgspec.json.decode(data["changes"])
    return msgspec.convert(data, AuditEntry)


def insert_audit_sql(mark: str) -> str:
    marks = ", ".join("?" if mark == "?" else f"${i}" for i in range(1, len(AUDIT_COLUMNS) + 1))
    return f"INSERT INTO audit ({', '.join(AUDIT_COLUMNS)}) VALUES ({marks})"


def list_audit_sql(query: AuditQuery, mark: str) -> tuple[str, list[Any]]:
    """The page `query` asks for, newest first; `mark`: "?" (SQLite) or "$" (PostgreSQL, numbered)."""
    clauses: list[str] = []
    args: list[Any] = []
    for sql, value in (("actor = {}", query.actor), ("action = {}", query.action), ("target = {}", query.target),
                       ("at >= {}", query.from_time), ("at < {}", query.to_time), ("id < {}", query.before_id)):
        if value is not None:
            args.append(value)
            clauses.append(sql.format("?" if mark == "?" else f"${len(args)}"))
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    args.append(query.limit)
    limit = "?" if mark == "?" else f"${len(args)}"
    return f"SELECT id, {', '.join(AUDIT_COLUMNS)} FROM audit{where} ORDER BY id DESC LIMIT {limit}", args
