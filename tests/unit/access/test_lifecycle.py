"""A virtual token's life (access/lifecycle.py) on a real SQLite store: each change stored, then the caches that
may hold the token told at once, so a revoked, rotated or limited token is refused or limited on its next use."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from llmgate.access.authenticate import Authenticator
from llmgate.access.lifecycle import TokenLifecycle
from llmgate.access.token_entry import hash_secret
from llmgate.access.tokens import TokenCache
from llmgate.audit import Actor, AuditLog
from llmgate.errors import Conflict, InvalidRequest, NotFound, TokenRevoked, Unauthorized
from llmgate.store.base import Project
from llmgate.store.crypto import KeyBox
from llmgate.store.sqlite import SqliteStore

T = TypeVar("T")
ACTOR = Actor(name="management_token", client="127.0.0.1")


class Parts:
    def __init__(self, store: SqliteStore, lifecycle: TokenLifecycle, authenticator: Authenticator,
                 project: Project) -> None:
        self.store, self.lifecycle, self.authenticator, self.project = store, lifecycle, authenticator, project

    async def caller(self, secret: str) -> Any:
        """Whom /v1 sees for `secret` (from the cache, else the store), as the authenticate step asks."""
        principal = self.authenticator.authenticate(secret, time.time())
        return principal if principal is not None else await self.authenticator.load(secret, time.time())


class FailingShared:
    """Redis that is down: publishing an invalidation fails."""

    async def publish(self, secret_hash: str) -> None:
        raise ConnectionError("redis is down")


def run(tmp_path: Path, test: Callable[[Parts], Awaitable[T]], shared: Any = None) -> T:
    async def main() -> T:
        store = SqliteStore(str(tmp_path / "tokens.db"))
        await store.open()
        try:
            cache = TokenCache(store, KeyBox(None), 60.0, 60.0, time.time)
            authenticator = Authenticator(None, cache, has_management_token=False, has_tokens=False)
            project = Project(id="p", name="p", allowed_models=("a", "b"), created_at=0.0, updated_at=0.0)
            await store.create_project(project)
            lifecycle = TokenLifecycle(store, cache, authenticator, shared, AuditLog(store, 0))
            return await test(Parts(store, lifecycle, authenticator, project))
        finally:
            await store.close()

    return asyncio.run(main())


def test_issuing_stores_only_the_hash_and_closes_an_open_gateway(tmp_path: Path) -> None:
    async def test(parts: Parts) -> None:
        assert parts.authenticator.is_open
        unknown = "lg-" + "x" * 43
        with pytest.raises(Unauthorized):
            await parts.caller(unknown)  # remembered as unknown for a while (the negative cache)
        token, secret = await parts.lifecycle.issue(parts.project, {"allowed_models": ["a", "a", "b"]}, ACTOR)
        assert not parts.authenticator.is_open  # the first token closes /v1 at once
        stored = await parts.store.get_token(token.id)
        assert stored is not None and stored.secret_hash == hash_secret(secret) and secret not in repr(stored)
        assert stored.allowed_models == ("a", "b") and token.prefix.endswith(secret[-4:])
        assert (await parts.caller(secret)).entry.token_id == token.id

    run(tmp_path, test)


def test_a_token_may_name_only_its_projects_models(tmp_path: Path) -> None:
    async def test(parts: Parts) -> None:
        with pytest.raises(InvalidRequest) as info:
            await parts.lifecycle.issue(parts.project, {"allowed_models": ["c"]}, ACTOR)
        assert info.value.param == "allowed_models"
        token, _ = await parts.lifecycle.issue(parts.project, {}, ACTOR)
        with pytest.raises(InvalidRequest):
            await parts.lifecycle.update(token.id, {"allowed_models": ["a", "c"]}, ACTOR)

    run(tmp_path, test)


def test_a_change_applies_to_the_next_request_though_the_token_was_cached(tmp_path: Path) -> None:
    async def test(parts: Parts) -> None:
        token, secret = await parts.lifecycle.issue(parts.project, {"max_requests": 5}, ACTOR)
        assert (await parts.caller(secret)).entry.limits.max_requests == 5  # now cached
        assert await parts.lifecycle.update(token.id, {}, ACTOR) == token  # no change: nothing written
        updated = await parts.lifecycle.update(token.id, {"max_requests": 1, "allowed_models": ["b", "b"]}, ACTOR)
        assert updated.max_requests == 1 and updated.allowed_models == ("b",)
        entry = (await parts.caller(secret)).entry
        assert entry.limits.max_requests == 1 and entry.allowed_models == frozenset({"b"})

    run(tmp_path, test)


def test_revoked_and_rotated_secrets_stop_at_once(tmp_path: Path) -> None:
    async def test(parts: Parts) -> None:
        token, secret = await parts.lifecycle.issue(parts.project, {}, ACTOR)
        await parts.caller(secret)
        rotated, new_secret = await parts.lifecycle.rotate(token.id, ACTOR)
        assert rotated.id == token.id and new_secret != secret
        with pytest.raises(Unauthorized):
            await parts.caller(secret)
        assert (await parts.caller(new_secret)).entry.token_id == token.id
        await parts.lifecycle.revoke(token.id, ACTOR)
        with pytest.raises(TokenRevoked):
            await parts.caller(new_secret)
        with pytest.raises(Conflict):
            await parts.lifecycle.rotate(token.id, ACTOR)

    run(tmp_path, test)


@pytest.mark.parametrize("change", ["update", "revoke", "rotate"])
def test_an_unknown_token_is_404(tmp_path: Path, change: str) -> None:
    async def test(parts: Parts) -> None:
        with pytest.raises(NotFound):
            if change == "update":
                await parts.lifecycle.update("tok_nope", {"max_requests": 1}, ACTOR)
            else:
                await getattr(parts.lifecycle, change)("tok_nope", ACTOR)

    run(tmp_path, test)


def test_redis_down_does_not_undo_a_stored_change(tmp_path: Path) -> None:
    async def test(parts: Parts) -> None:
        token, secret = await parts.lifecycle.issue(parts.project, {}, ACTOR)
        await parts.lifecycle.revoke(token.id, ACTOR)  # the broadcast fails; the revocation stands here
        with pytest.raises(TokenRevoked):
            await parts.caller(secret)

    run(tmp_path, test, shared=FailingShared())
