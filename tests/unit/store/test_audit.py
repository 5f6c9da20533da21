"""The audit table (store/audit.py) on both backends: appended, listed newest first with filters and pages,
never updated, pruned by age."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmgate.store.audit import AuditEntry, AuditQuery
from llmgate.store.backend import open_store
from llmgate.store.base import Store

NOW = 1_700_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    backend = open_store(url, str(tmp_path))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(backend.open())
    if request.param == "postgres":  # one server for the session: start each test from an empty table
        loop.run_until_complete(backend.pool.execute("TRUNCATE audit"))  # type: ignore[attr-defined]
    backend._loop = loop  # type: ignore[attr-defined]
    yield backend
    loop.run_until_complete(backend.close())
    loop.close()


def run(store: Store, coro):  # type: ignore[no-untyped-def]
    return store._loop.run_until_complete(coro)  # type: ignore[attr-defined]


def entry(at: float, action: str = "token.create", actor: str = "management_token", target: str = "tok_1",
          **changes: dict[str, object]) -> AuditEntry:
    return AuditEntry(at=at, actor=actor, client="10.0.0.7", action=action, target=target, changes=changes)


def test_entries_round_trip_newest_first(store: Store) -> None:
    run(store, store.append_audit(entry(NOW, "project.create", target="proj_1", name={"after": "app"})))
    run(store, store.append_audit(entry(NOW + 1, "project.update", target="proj_1",
                                        name={"before": "app", "after": "web"})))
    rows = run(store, store.list_audit(AuditQuery()))
    assert [r.action for r in rows] == ["project.update", "project.create"]
    assert rows[0].changes == {"name": {"before": "app", "after": "web"}}
    assert (rows[0].at, rows[0].actor, rows[0].client, rows[0].target) == (NOW + 1, "management_token", "10.0.0.7",
                                                                           "proj_1")
    assert rows[0].id is not None and rows[1].id is not None and rows[0].id > rows[1].id


def test_filters_and_pages(store: Store) -> None:
    for i in range(5):
        run(store, store.append_audit(entry(NOW + i, "token.rotate" if i % 2 else "token.revoke",
                                            actor="jwt:ada" if i < 3 else "management_token", target=f"tok_{i}")))
    assert [r.target for r in run(store, store.list_audit(AuditQuery(action="token.rotate")))] == ["tok_3", "tok_1"]
    assert [r.target for r in run(store, store.list_audit(AuditQuery(actor="jwt:ada")))] == ["tok_2", "tok_1", "tok_0"]
    assert [r.target for r in run(store, store.list_audit(AuditQuery(target="tok_4")))] == ["tok_4"]
    window = AuditQuery(from_time=NOW + 1, to_time=NOW + 3)
    assert [r.target for r in run(store, store.list_audit(window))] == ["tok_2", "tok_1"]
    first = run(store, store.list_audit(AuditQuery(limit=2)))
    second = run(store, store.list_audit(AuditQuery(limit=2, before_id=first[-1].id)))
    third = run(store, store.list_audit(AuditQuery(limit=2, before_id=second[-1].id)))
    assert [r.target for r in first + second + third] == ["tok_4", "tok_3", "tok_2", "tok_1", "tok_0"]


def test_rows_cannot_be_changed(store: Store) -> None:
    run(store, store.append_audit(entry(NOW)))
    sql = "UPDATE audit SET actor = 'someone-else'"
    with pytest.raises(Exception, match="append-only"):
        if store.dialect == "sqlite":
            run(store, store._db.execute(sql))  # type: ignore[attr-defined]
        else:
            run(store, store.pool.execute(sql))  # type: ignore[attr-defined]
    assert run(store, store.list_audit(AuditQuery()))[0].actor == "management_token"


def test_prune_deletes_only_older_rows(store: Store) -> None:
    for i in range(3):
        run(store, store.append_audit(entry(NOW + i * 86400, target=f"tok_{i}")))
    assert run(store, store.prune_audit(NOW + 86400)) == 1
    assert [r.target for r in run(store, store.list_audit(AuditQuery()))] == ["tok_2", "tok_1"]
