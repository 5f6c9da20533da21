"""The usage table on both backends: batched inserts and the summary /manage/usage shows."""

from __future__ import annotations

import uuid

import pytest

from llmgate.store.base import Store
from llmgate.store.usage import UsageQuery, percentile
from llmgate.usage.event import UsageEvent
from tests.unit.store.test_base import run, store  # noqa: F401 - the two-backend fixture

DAY = 1_700_000_000.0 - 1_700_000_000.0 % 86400  # a UTC midnight: 2023-11-14


def event(project: str, n: int, **kw) -> UsageEvent:  # type: ignore[no-untyped-def]
    fields = dict(request_id=f"req-{uuid.uuid4().hex}", time=DAY + n * 60, method="POST",
                  endpoint="/v1/chat/completions", status=200, model="gpt-4o", project_id=project,
                  token_id="tok_a", duration_ms=float(n), upstream_ms=float(n) / 2, overhead_ms=0.1 * n,
                  prompt_tokens=10, completion_tokens=5, total_tokens=15, cost=0.001)
    fields.update(kw)
    return UsageEvent(**fields)  # type: ignore[arg-type]


def test_insert_and_summarize(store: Store) -> None:  # noqa: F811
    project = f"proj_{uuid.uuid4().hex[:8]}"
    events = [event(project, n) for n in range(1, 11)]
    events.append(event(project, 11, status=502, error="upstream_error", prompt_tokens=None,
                        completion_tokens=None, total_tokens=None, cost=None))
    events.append(event(project, 12, model="gpt-4o-mini", token_id="tok_b", estimated=True, cost=None,
                        time=DAY + 86400 + 5, stream=True))
    run(store, store.insert_usage(events))

    [total] = run(store, store.summarize_usage(UsageQuery(project_id=project)))
    assert (total.group, total.requests, total.errors) == ("all", 12, 1)
    assert (total.prompt_tokens, total.completion_tokens, total.total_tokens) == (110, 55, 165)
    assert total.estimated_requests == 1
    assert total.cost == pytest.approx(0.010)
    durations = sorted(float(n) for n in range(1, 13))
    assert total.latency_p50_ms == pytest.approx(percentile(durations, 0.5))
    assert total.latency_p95_ms == pytest.approx(percentile(durations, 0.95))
    assert total.overhead_p95_ms == pytest.approx(round(percentile([0.1 * n for n in range(1, 13)], 0.95), 3))

    by_model = run(store, store.summarize_usage(UsageQuery(project_id=project, group_by="model")))
    assert [(g.group, g.requests, g.cost) for g in by_model] == [("gpt-4o", 11, pytest.approx(0.010)),
                                                                  ("gpt-4o-mini", 1, None)]
    by_day = run(store, store.summarize_usage(UsageQuery(project_id=project, group_by="day")))
    assert [(g.group, g.requests) for g in by_day] == [("2023-11-14", 11), ("2023-11-15", 1)]
    by_hour = run(store, store.summarize_usage(UsageQuery(project_id=project, group_by="hour")))
    assert [(g.group, g.requests) for g in by_hour] == [("2023-11-14T00:00Z", 11), ("2023-11-15T00:00Z", 1)]
    by_token = run(store, store.summarize_usage(UsageQuery(project_id=project, group_by="token",
                                                           from_time=DAY + 120, to_time=DAY + 86400)))
    assert [(g.group, g.requests) for g in by_token] == [("tok_a", 10)]  # n = 2..11: from inclusive
    assert run(store, store.summarize_usage(UsageQuery(project_id=project, model="nope"))) == []


def test_cached_requests_are_stored_and_counted(store: Store) -> None:  # noqa: F811
    project = f"proj_{uuid.uuid4().hex[:8]}"
    run(store, store.insert_usage([event(project, 1), event(project, 2, cached=True, cost=0.0),
                                   event(project, 3, cached=True, cost=0.0)]))
    [total] = run(store, store.summarize_usage(UsageQuery(project_id=project)))
    assert (total.requests, total.cached_requests, total.total_tokens) == (3, 2, 45)
    assert total.cost == pytest.approx(0.001)
    assert total.latency_p50_ms == pytest.approx(2.0)  # the percentiles still line up after the new column


def test_percentile_matches_percentile_cont() -> None:
    assert percentile([], 0.5) is None
    assert percentile([4.0], 0.95) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(n) for n in range(1, 21)], 0.95) == pytest.approx(19.05)


def test_sqlite_stores_none_as_null_and_booleans_as_integers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The sqlite3 adapters registered for speed (store/sqlite.py) must not change what is stored."""
    import asyncio
    import sqlite3

    from llmgate.store.sqlite import SqliteStore

    backend = SqliteStore(str(tmp_path / "llmgate.db"))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(backend.open())
        loop.run_until_complete(backend.insert_usage([event("p", 1, stream=True, estimated=False, cost=None,
                                                            token_id=None)]))
        loop.run_until_complete(backend.close())
    finally:
        loop.close()
    row = sqlite3.connect(tmp_path / "llmgate.db").execute(
        "SELECT stream, typeof(stream), estimated, typeof(estimated), typeof(cost), typeof(token_id), "
        "typeof(error) FROM usage").fetchone()
    assert row == (1, "integer", 0, "integer", "null", "null", "null")


def test_sqlite_project_and_token_filters_use_their_partial_indexes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The project/token indexes skip master-key rows (migration 0004); a filter by either still uses its index."""
    import asyncio
    import sqlite3

    from llmgate.store.sqlite import SqliteStore

    backend = SqliteStore(str(tmp_path / "llmgate.db"))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(backend.open())
        loop.run_until_complete(backend.close())
    finally:
        loop.close()
    db = sqlite3.connect(tmp_path / "llmgate.db")
    for column, index in (("project_id", "usage_project_time"), ("token_id", "usage_token_time")):
        plan = " ".join(str(row) for row in db.execute(
            f"EXPLAIN QUERY PLAN SELECT COUNT(*) FROM usage WHERE {column} = ? AND time >= ?", ("x", 0.0)))
        assert index in plan, plan


def test_a_stream_that_ended_with_an_error_counts_as_an_error(store: Store) -> None:  # noqa: F811
    """Its status is the 200 the client got before the error event: its `error` makes it one."""
    project = f"proj_{uuid.uuid4().hex[:8]}"
    events = [event(project, 1), event(project, 2, stream=True, error="overloaded_error"),
              event(project, 3, status=499)]
    run(store, store.insert_usage(events))
    [total] = run(store, store.summarize_usage(UsageQuery(project_id=project)))
    assert (total.requests, total.errors) == (3, 2)


def test_end_users_are_recorded_filtered_and_grouped(store: Store) -> None:  # noqa: F811
    project = f"proj_{uuid.uuid4().hex[:8]}"
    events = [event(project, 1, end_user="alice"), event(project, 2, end_user="alice"),
              event(project, 3, end_user="bob"), event(project, 4)]
    run(store, store.insert_usage(events))
    by_user = run(store, store.summarize_usage(UsageQuery(project_id=project, group_by="user")))
    assert sorted((g.group or "", g.requests) for g in by_user) == [("", 1), ("alice", 2), ("bob", 1)]
    [alice] = run(store, store.summarize_usage(UsageQuery(project_id=project, user="alice")))
    assert (alice.requests, alice.total_tokens) == (2, 30)


def rows_of(backend: Store, project: str) -> int:
    groups = run(backend, backend.summarize_usage(UsageQuery(project_id=project)))
    return groups[0].requests if groups else 0


def test_replaying_a_stored_batch_adds_nothing_and_a_half_stored_one_only_what_is_missing(
        store: Store) -> None:  # noqa: F811
    project = f"proj_{uuid.uuid4().hex[:8]}"
    events = [event(project, n) for n in range(1, 7)]
    run(store, store.insert_usage(events))
    run(store, store.insert_usage_once(events))
    assert rows_of(store, project) == 6

    later = [event(project, n) for n in range(7, 10)]
    run(store, store.insert_usage(later[:1]))  # half stored: the first of three
    run(store, store.insert_usage_once(later))
    assert rows_of(store, project) == 9
    run(store, store.insert_usage_once([*events, *later]))
    assert rows_of(store, project) == 9


def test_a_row_is_the_same_only_with_the_same_request_id_and_time(store: Store) -> None:  # noqa: F811
    """Clients may send their own request ids, so one can repeat: at another time it is another request."""
    project = f"proj_{uuid.uuid4().hex[:8]}"
    first = event(project, 1, request_id="client-id")
    run(store, store.insert_usage([first]))
    run(store, store.insert_usage_once([first, event(project, 2, request_id="client-id"),
                                        event(project, 1, request_id="other-id")]))
    assert rows_of(store, project) == 3
    run(store, store.insert_usage_once([]))
    assert rows_of(store, project) == 3
