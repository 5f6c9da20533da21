"""The store contract (store/base.py) on both backends: SQLite always, PostgreSQL when a real server can be started."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmgate.store.backend import open_store
from llmgate.store.base import Conflict, Project, Store, Token, UsageDelta

NOW = 1_700_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    backend = open_store(url, str(tmp_path))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(backend.open())
    if request.param == "postgres":  # one server for the session: start each test from empty tables
        loop.run_until_complete(backend.pool.execute("TRUNCATE projects, tokens"))  # type: ignore[attr-defined]
    backend._loop = loop  # type: ignore[attr-defined]
    yield backend
    loop.run_until_complete(backend.close())
    loop.close()


def run(store: Store, coro):  # type: ignore[no-untyped-def]
    return store._loop.run_until_complete(coro)  # type: ignore[attr-defined]


def project(name: str = "app", **kw) -> Project:  # type: ignore[no-untyped-def]
    return Project(id=f"proj_{uuid.uuid4().hex[:12]}", name=name, created_at=NOW, updated_at=NOW, **kw)


def token(project_id: str, **kw) -> Token:  # type: ignore[no-untyped-def]
    tid = uuid.uuid4().hex[:12]
    return Token(id=f"tok_{tid}", project_id=project_id, prefix="lg-…abcd", secret_hash=f"hash-{tid}",
                 created_at=NOW, updated_at=NOW, **kw)


def test_migrations_apply_once(store: Store) -> None:
    assert run(store, store.migrate()) == []


def test_project_round_trip(store: Store) -> None:
    p = project(description="d", metadata={"team": "x", "n": 1}, allowed_models=("a", "b"),
                upstream_keys={"openai": "enc"})
    run(store, store.create_project(p))
    assert run(store, store.get_project(p.id)) == p
    assert run(store, store.list_projects()) == [p]
    assert run(store, store.get_project("missing")) is None


def test_has_tokens_counts_revoked_ones(store: Store) -> None:
    assert run(store, store.has_tokens()) is False
    p = project()
    run(store, store.create_project(p))
    t = token(p.id)
    run(store, store.create_token(t))
    assert run(store, store.has_tokens()) is True
    run(store, store.revoke_token(t.id, NOW))
    assert run(store, store.has_tokens()) is True


def test_project_names_are_unique(store: Store) -> None:
    run(store, store.create_project(project("same")))
    with pytest.raises(Conflict):
        run(store, store.create_project(project("same")))
    other = project("other")
    run(store, store.create_project(other))
    with pytest.raises(Conflict):
        run(store, store.update_project(other.id, {"name": "same"}, NOW + 1))


def test_update_project_changes_only_what_is_given(store: Store) -> None:
    p = project(description="old")
    run(store, store.create_project(p))
    updated = run(store, store.update_project(p.id, {"allowed_models": ["m"], "metadata": {"k": "v"}}, NOW + 5))
    assert (updated.description, updated.allowed_models, updated.metadata) == ("old", ("m",), {"k": "v"})
    assert updated.updated_at == NOW + 5 and updated.created_at == NOW
    assert run(store, store.update_project("missing", {"name": "x"}, NOW)) is None
    with pytest.raises(ValueError):
        run(store, store.update_project(p.id, {"id": "x"}, NOW))


def test_delete_project_revokes_its_tokens(store: Store) -> None:
    p, q = project("p"), project("q")
    run(store, store.create_project(p))
    run(store, store.create_project(q))
    t1, t2, t3 = token(p.id), token(p.id), token(q.id)
    for t in (t1, t2, t3):
        run(store, store.create_token(t))
    revoked = run(store, store.delete_project(p.id, NOW + 1))
    assert {t.id for t in revoked} == {t1.id, t2.id} and not any(t.is_active for t in revoked)
    assert run(store, store.get_project(p.id)) is None
    assert run(store, store.get_token(t3.id)).is_active
    assert run(store, store.delete_project(p.id, NOW)) is None


def test_token_round_trip_and_lookup_by_hash(store: Store) -> None:
    p = project()
    run(store, store.create_project(p))
    t = token(p.id, expires_at=NOW + 60, max_requests=5, rpm_limit=2, tpm_limit=100, budget_tokens=1000,
              budget_cost=12.5, allowed_models=("m",))
    run(store, store.create_token(t))
    assert run(store, store.get_token(t.id)) == t
    assert run(store, store.find_token(t.secret_hash)) == t
    assert run(store, store.find_token("nope")) is None


def test_list_tokens_filters(store: Store) -> None:
    p, q = project("p"), project("q")
    run(store, store.create_project(p))
    run(store, store.create_project(q))
    a, b, c = token(p.id), token(p.id), token(q.id)
    for t in (a, b, c):
        run(store, store.create_token(t))
    run(store, store.revoke_token(b.id, NOW))
    assert {t.id for t in run(store, store.list_tokens())} == {a.id, b.id, c.id}
    assert {t.id for t in run(store, store.list_tokens(project_id=p.id))} == {a.id, b.id}
    assert [t.id for t in run(store, store.list_tokens(project_id=p.id, is_active=True))] == [a.id]
    assert [t.id for t in run(store, store.list_tokens(is_active=False))] == [b.id]


def test_update_token_limits_leaves_counters(store: Store) -> None:
    p = project()
    run(store, store.create_project(p))
    t = token(p.id)
    run(store, store.create_token(t))
    run(store, store.add_usage([UsageDelta(t.id, 3, 40, NOW + 1, cost=0.25)]))
    updated = run(store, store.update_token(t.id, {"rpm_limit": 7, "expires_at": None, "budget_cost": 2.0}, NOW + 2))
    assert (updated.rpm_limit, updated.request_count, updated.tokens_used) == (7, 3, 40)
    assert (updated.budget_cost, updated.cost_used) == (2.0, 0.25)
    assert run(store, store.update_token("missing", {"rpm_limit": 1}, NOW)) is None


def test_usage_is_added_in_batches(store: Store) -> None:
    p = project()
    run(store, store.create_project(p))
    a, b = token(p.id), token(p.id)
    run(store, store.create_token(a))
    run(store, store.create_token(b))
    run(store, store.add_usage([UsageDelta(a.id, 2, 10, NOW + 5), UsageDelta(b.id, 1, 1, NOW + 3)]))
    run(store, store.add_usage([UsageDelta(a.id, 1, 5, NOW + 4)]))
    got = run(store, store.get_token(a.id))
    assert (got.request_count, got.tokens_used, got.last_used_at) == (3, 15, NOW + 5)
    run(store, store.add_usage([]))


def test_revoke_and_rotate(store: Store) -> None:
    p = project()
    run(store, store.create_project(p))
    t = token(p.id)
    run(store, store.create_token(t))
    rotated = run(store, store.rotate_token(t.id, "new-hash", "lg-…wxyz", NOW + 1))
    assert (rotated.secret_hash, rotated.prefix) == ("new-hash", "lg-…wxyz")
    assert run(store, store.find_token(t.secret_hash)) is None
    revoked = run(store, store.revoke_token(t.id, NOW + 2))
    assert not revoked.is_active and revoked.revoked_at == NOW + 2
    assert run(store, store.revoke_token(t.id, NOW + 3)).revoked_at == NOW + 2
    assert run(store, store.rotate_token(t.id, "again", "x", NOW)) is None
    assert run(store, store.revoke_token("missing", NOW)) is None
