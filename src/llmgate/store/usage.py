"""The `usage` table's SQL, shared by both backends: the insert, and the summary `GET /manage/usage` shows.

Sums and counts are computed in SQL; the p50/p95 of latency and overhead by PostgreSQL's `percentile_cont`,
and for SQLite (which has no percentile function) in Python over the group's values, with the same linear
interpolation, so both backends answer alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from llmgate.usage.event import UsageEvent

USAGE_COLUMNS: tuple[str, ...] = UsageEvent.__struct_fields__
GroupBy = Literal["day", "hour", "model", "project", "token", "user"]
_BUCKET_S = {"day": 86400, "hour": 3600}
_COLUMN_OF = {"model": "model", "project": "project_id", "token": "token_id", "user": "end_user"}


class UsageQuery(msgspec.Struct, kw_only=True, frozen=True):
    """Which rows (all filters optional; `from_time` inclusive, `to_time` exclusive, Unix seconds) and how to
    group them (None: one group, `all`)."""

    project_id: str | None = None
    token_id: str | None = None
    model: str | None = None
    user: str | None = None
    """The end user (the request body's `user`, or the end-user header)."""
    from_time: float | None = None
    to_time: float | None = None
    group_by: GroupBy | None = None


class UsageGroup(msgspec.Struct, kw_only=True):
    """One group of the summary."""

    group: str | None
    """The day (`2026-11-23`), hour (`2026-11-23T20:00Z`), model, project id, token id or end user; `all`
    ungrouped; null: requests without one (no end user named)."""
    requests: int
    errors: int
    """Requests answered with a status >= 400 (499: the client left)."""
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated_requests: int
    """Requests whose tokens are tiktoken's estimate (the provider reported none)."""
    cached_requests: int = 0
    """Requests answered from the response cache (their tokens are counted, at no cost)."""
    cost: float | None
    """Sum over the requests that have a price; null when none has."""
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    overhead_p50_ms: float | None
    overhead_p95_ms: float | None


def event_rows(events: Sequence[UsageEvent]) -> list[tuple[Any, ...]]:
    return [msgspec.structs.astuple(event) for event in events]


def insert_sql(mark: str, rows: int = 1) -> str:
    """The insert of `rows` rows, their values one after the other; `mark`: "?" (SQLite) or "$" (PostgreSQL,
    numbered)."""
    width = len(USAGE_COLUMNS)
    values = ", ".join(
        "(" + ", ".join("?" if mark == "?" else f"${row * width + i}" for i in range(1, width + 1)) + ")"
        for row in range(rows))
    return f"INSERT INTO usage ({', '.join(USAGE_COLUMNS)}) VALUES {values}"


def insert_once_sql(mark: str) -> str:
    """The insert of one row unless a row with its (request_id, time) is stored already (found through the
    `usage_time` index); `mark`: "?" (SQLite) or "$" (PostgreSQL). Parameters are numbered, so the two the
    check needs are the row's own: the same arguments as `insert_sql`'s."""
    marks = [f"{mark}{i}" for i in range(1, len(USAGE_COLUMNS) + 1)]
    request_id, time_ = (marks[USAGE_COLUMNS.index(c)] for c in ("request_id", "time"))
    return (f"INSERT INTO usage ({', '.join(USAGE_COLUMNS)}) SELECT {', '.join(marks)} WHERE NOT EXISTS "
            f"(SELECT 1 FROM usage WHERE time = {time_} AND request_id = {request_id})")


def group_key(query: UsageQuery, dialect: str) -> str:
    """The SQL expression a row is grouped by."""
    group_by = query.group_by
    if group_by is None:
        return "'all'"
    if group_by in _BUCKET_S:
        size = _BUCKET_S[group_by]
        return f"CAST(time / {size} AS INTEGER) * {size}" if dialect == "sqlite" else f"floor(time / {size}) * {size}"
    return _COLUMN_OF[group_by]


def where_clause(query: UsageQuery, mark: str) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    for sql, value in (("project_id = {}", query.project_id), ("token_id = {}", query.token_id),
                       ("model = {}", query.model), ("end_user = {}", query.user), ("time >= {}", query.from_time),
                       ("time < {}", query.to_time)):
        if value is not None:
            args.append(value)
            clauses.append(sql.format("?" if mark == "?" else f"${len(args)}"))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def summary_sql(query: UsageQuery, dialect: str) -> tuple[str, list[Any]]:
    """The summary query; percentile columns only for PostgreSQL."""
    key = group_key(query, dialect)
    where, args = where_clause(query, "?" if dialect == "sqlite" else "$")
    estimated, cached = ("estimated", "cached") if dialect == "postgres" else ("estimated = 1", "cached = 1")
    columns = [f"{key} AS grp", "COUNT(*)", "SUM(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END)",
               "COALESCE(SUM(prompt_tokens), 0)", "COALESCE(SUM(completion_tokens), 0)",
               "COALESCE(SUM(total_tokens), 0)", f"SUM(CASE WHEN {estimated} THEN 1 ELSE 0 END)", "SUM(cost)",
               f"SUM(CASE WHEN {cached} THEN 1 ELSE 0 END)"]
    if dialect == "postgres":
        columns += [f"percentile_cont({p}) WITHIN GROUP (ORDER BY {c})"
                    for c in ("duration_ms", "overhead_ms") for p in (0.5, 0.95)]
    return f"SELECT {', '.join(columns)} FROM usage{where} GROUP BY 1 ORDER BY 1", args


def latency_sql(query: UsageQuery) -> tuple[str, list[Any]]:
    """SQLite: each row's group, latency and overhead, for the percentiles computed here."""
    where, args = where_clause(query, "?")
    return f"SELECT {group_key(query, 'sqlite')}, duration_ms, overhead_ms FROM usage{where}", args


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """PostgreSQL's percentile_cont: linear interpolation between the closest ranks."""
    if not sorted_values:
        return None
    position = p * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def group_label(query: UsageQuery, key: Any) -> str | None:
    if key is None or query.group_by not in _BUCKET_S:
        return None if key is None else str(key)
    at = time.gmtime(float(key))
    return time.strftime("%Y-%m-%d" if query.group_by == "day" else "%Y-%m-%dT%H:00Z", at)


def summary_groups(query: UsageQuery, rows: Sequence[Sequence[Any]],
                   latencies: dict[Any, tuple[list[float], list[float]]] | None = None) -> list[UsageGroup]:
    """Summary rows (and, for SQLite, each group's latencies and overheads) as UsageGroups."""
    groups = []
    for row in rows:
        key = row[0]
        if latencies is not None:
            durations, overheads = (sorted(values) for values in latencies.get(key, ([], [])))
            points = [percentile(durations, 0.5), percentile(durations, 0.95), percentile(overheads, 0.5),
                      percentile(overheads, 0.95)]
        else:
            points = list(row[9:13])
        p50, p95, o50, o95 = (round(float(v), 3) if v is not None else None for v in points)
        groups.append(UsageGroup(group=group_label(query, key), requests=int(row[1]), errors=int(row[2]),
                                 prompt_tokens=int(row[3]), completion_tokens=int(row[4]),
                                 total_tokens=int(row[5]), estimated_requests=int(row[6]),
                                 cached_requests=int(row[8] or 0),
                                 cost=round(float(row[7]), 10) if row[7] is not None else None,
                                 latency_p50_ms=p50, latency_p95_ms=p95, overhead_p50_ms=o50, overhead_p95_ms=o95))
    return groups
