"""The token cache on a real SQLite store: hits never reach it, misses are single-flight, counts batch up; and
virtual tokens end to end in process (issued through /manage, used on /v1 against the double)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmgate.access.authenticate import Authenticator
from llmgate.access.token_entry import display_prefix, hash_secret, new_secret
from llmgate.access.tokens import TokenCache
from llmgate.errors import ModelNotAllowed, QuotaExhausted, TokenExpired, TokenRevoked, Unauthorized
from llmgate.store.base import Project, Token
from llmgate.store.crypto import KeyBox
from llmgate.store.sqlite import SqliteStore
from tests.inprocess.access import MANAGEMENT_TOKEN, TOKENS_ENV, chat, manage, new_token
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, double, seen
from tests.servers import MASTER_KEY

NOW = 1_700_000_000.0


class CountingStore(SqliteStore):
    """The real SQLite store, counting the lookups the hot path makes."""

    lookups = 0

    async def find_token(self, secret_hash: str) -> Token | None:
        self.lookups += 1
        return await super().find_token(secret_hash)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def setup(tmp_path: Path, **limits) -> tuple[CountingStore, TokenCache, Clock, str, Token]:  # type: ignore[no-untyped-def]
    store = CountingStore(str(tmp_path / "t.db"))
    await store.open()
    await store.create_project(Project(id="p", name="p", allowed_models=("a", "b"), created_at=NOW, updated_at=NOW,
                                       upstream_keys={"openai": KeyBox("k" * 20).encrypt("sk-own")}))
    secret = new_secret()
    token = Token(id="t", project_id="p", prefix=display_prefix(secret), secret_hash=hash_secret(secret),
                  created_at=NOW, updated_at=NOW, **limits)
    await store.create_token(token)
    clock = Clock()
    return store, TokenCache(store, KeyBox("k" * 20), 10.0, 1.0, clock), clock, secret, token


def test_secrets() -> None:
    secret = new_secret()
    assert secret.startswith("lg-") and len(secret) == 46 and new_secret() != secret
    assert display_prefix(secret) == f"lg-…{secret[-4:]}" and len(hash_secret(secret)) == 64


def test_a_steady_stream_makes_one_store_lookup(tmp_path: Path) -> None:
    async def run() -> None:
        store, cache, clock, secret, _ = await setup(tmp_path)
        auth = Authenticator("sk-master", cache)
        assert auth.authenticate(secret, clock.now) is None  # not cached yet
        results = await asyncio.gather(*(auth.load(secret, clock.now) for _ in range(50)))
        assert store.lookups == 1 and all(r.entry is results[0].entry for r in results)
        for step in range(1000):
            clock.now = NOW + step * 0.05  # 50 s of requests; the write-back cycle reloads in the background
            principal = auth.authenticate(secret, clock.now)
            if principal is None:
                raise AssertionError(f"a request at +{step * 0.05:.2f} s had to wait for the store")
            cache.admit(principal.entry, clock.now)  # type: ignore[arg-type]
            if step % 20 == 0:
                await cache.flush()
        assert principal.entry.upstream_keys == {"openai": "sk-own"}  # type: ignore[union-attr]
        assert (await store.get_token("t")).request_count == 981  # type: ignore[union-attr]  # written back after request 981
        await cache.flush()
        assert (await store.get_token("t")).request_count == 1000  # type: ignore[union-attr]
        await store.close()

    asyncio.run(run())


def test_a_token_from_the_store_closes_an_open_gateway(tmp_path: Path) -> None:
    async def run() -> None:
        store, cache, clock, secret, _ = await setup(tmp_path)
        auth = Authenticator(None, cache, has_tokens=False)  # as if the store had been empty at start
        assert auth.authenticate(None, clock.now) is not None and auth.is_open
        assert (await auth.load(secret, clock.now)).entry is not None
        assert not auth.is_open
        with pytest.raises(Unauthorized):
            auth.authenticate(None, clock.now)
        await store.close()

    asyncio.run(run())


def test_unknown_secrets_are_remembered_briefly(tmp_path: Path) -> None:
    async def run() -> None:
        store, cache, clock, _, _ = await setup(tmp_path)
        bad = hash_secret("lg-unknown")
        with pytest.raises(Unauthorized):
            await cache.load(bad)
        with pytest.raises(Unauthorized):
            cache.lookup(bad, clock.now + 0.5)
        assert store.lookups == 1
        assert cache.lookup(bad, clock.now + 1.5) is None  # expired: ask the store again
        await store.close()

    asyncio.run(run())


def test_revoked_expired_and_wrong_model(tmp_path: Path) -> None:
    async def run() -> None:
        store, cache, clock, secret, _ = await setup(tmp_path, expires_at=NOW + 60, allowed_models=("a",))
        entry = await cache.load(hash_secret(secret))
        entry.check(clock.now)
        entry.check_model("a")
        with pytest.raises(ModelNotAllowed):
            entry.check_model("b")  # allowed by the project, not by the token
        with pytest.raises(TokenExpired):
            entry.check(NOW + 60)
        await store.revoke_token("t", NOW)
        cache.forget(hash_secret(secret))
        assert cache.lookup(hash_secret(secret), clock.now) is None
        with pytest.raises(TokenRevoked):
            (await cache.load(hash_secret(secret))).check(clock.now)
        await store.close()

    asyncio.run(run())


def test_changing_a_token_keeps_unflushed_counts(tmp_path: Path) -> None:
    async def run() -> None:
        store, cache, clock, secret, _ = await setup(tmp_path, max_requests=3)
        entry = await cache.load(hash_secret(secret))
        cache.admit(entry, clock.now)
        cache.admit(entry, clock.now)
        await store.update_token("t", {"max_requests": 2}, NOW)
        cache.forget(hash_secret(secret))
        entry = await cache.load(hash_secret(secret))
        with pytest.raises(QuotaExhausted) as info:
            cache.admit(entry, clock.now)
        assert info.value.code == "request_limit_reached"
        await store.close()

    asyncio.run(run())


def test_usage_counts_towards_the_budget(tmp_path: Path) -> None:
    async def run() -> None:
        store, cache, clock, secret, _ = await setup(tmp_path, budget_tokens=100)
        entry = await cache.load(hash_secret(secret))
        cache.admit(entry, clock.now)
        assert cache.record_usage(entry, 100, clock.now) is False  # no Redis: nothing shared to record
        with pytest.raises(QuotaExhausted) as info:
            cache.admit(entry, clock.now)
        assert info.value.code == "token_budget_exhausted"
        await cache.flush()
        assert (await store.get_token("t")).tokens_used == 100  # type: ignore[union-attr]
        await store.close()

    asyncio.run(run())


def test_cost_counts_towards_the_cost_budget_and_is_written_back(tmp_path: Path) -> None:
    async def run() -> None:
        store, cache, clock, secret, _ = await setup(tmp_path, budget_cost=0.01)
        entry = await cache.load(hash_secret(secret))
        cache.admit(entry, clock.now)
        cache.record_usage(entry, 10, clock.now, cost=0.004)
        cache.admit(entry, clock.now)
        cache.record_usage(entry, 10, clock.now, cost=0.006)
        with pytest.raises(QuotaExhausted) as info:
            cache.admit(entry, clock.now)
        assert info.value.code == "cost_budget_exhausted"
        await cache.flush()
        stored = await store.get_token("t")
        assert stored is not None and stored.cost_used == pytest.approx(0.01) and stored.tokens_used == 20
        cache.forget(hash_secret(secret))  # a reload keeps what was spent
        reloaded = await cache.load(hash_secret(secret))
        assert reloaded is not None and reloaded.counters.cost_used == pytest.approx(0.01)
        await store.close()

    asyncio.run(run())


def test_redis_down_falls_back_to_local_limits(tmp_path: Path) -> None:
    from llmgate.store.redis import SharedLimits
    from tests.servers import free_port

    async def run() -> None:
        store, cache, clock, secret, _ = await setup(tmp_path, max_requests=2)
        cache.shared = SharedLimits(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
        entry = await cache.load(hash_secret(secret))
        await cache.admit_shared(entry, clock.now)
        await cache.admit_shared(entry, clock.now)
        with pytest.raises(QuotaExhausted):
            await cache.admit_shared(entry, clock.now)
        await cache.shared.close()
        await store.close()

    asyncio.run(run())


# Virtual tokens end to end in process: created through /manage, used on /v1 against the double.
@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with Gateway(upstream=double(), env={**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1"}) as gateway:
        yield gateway


def test_token_works_and_secret_is_shown_once(gw: Gateway) -> None:
    token = new_token(gw)
    assert token["secret"].startswith("lg-") and token["prefix"] == f"lg-…{token['secret'][-4:]}"
    assert chat(gw, token["secret"]).status_code == 200
    again = manage(gw, "GET", f"/tokens/{token['id']}").json()
    assert "secret" not in again and token["secret"] not in str(manage(gw, "GET", "/tokens").json())


def test_master_key_is_still_admin(gw: Gateway) -> None:
    assert chat(gw, MASTER_KEY).status_code == 200


def test_unknown_token_is_401(gw: Gateway) -> None:
    response = chat(gw, "lg-not-a-real-token")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_revoked_token_is_refused_at_once(gw: Gateway) -> None:
    token = new_token(gw)
    assert chat(gw, token["secret"]).status_code == 200
    assert manage(gw, "DELETE", f"/tokens/{token['id']}").json()["is_active"] is False
    response = chat(gw, token["secret"])
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_revoked"


def test_expired_token_is_401(gw: Gateway) -> None:
    token = new_token(gw, expires_at=time.time() - 1)
    response = chat(gw, token["secret"])
    assert response.status_code == 401 and response.json()["error"]["code"] == "token_expired"


def test_rotate_replaces_the_secret(gw: Gateway) -> None:
    token = new_token(gw)
    assert chat(gw, token["secret"]).status_code == 200
    rotated = manage(gw, "POST", f"/tokens/{token['id']}/rotate").json()
    assert rotated["secret"] != token["secret"]
    assert chat(gw, token["secret"]).status_code == 401
    assert chat(gw, rotated["secret"]).status_code == 200


def test_deleting_a_project_revokes_its_tokens(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "doomed"}).json()
    token = new_token(gw, project)
    assert chat(gw, token["secret"]).status_code == 200
    assert manage(gw, "DELETE", f"/projects/{project['id']}").json()["revoked_tokens"] == 1
    assert chat(gw, token["secret"]).status_code == 401
    assert manage(gw, "GET", f"/projects/{project['id']}").status_code == 404


def test_project_upstream_key_is_used_and_masked(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "own-key",
                                                    "upstream_keys": {"openai": "sk-project-own-key-1234"}}).json()
    assert project["upstream_keys"] == {"openai": "sk-****1234"}
    token = new_token(gw, project)
    chat(gw, token["secret"])
    assert seen()["last_auth"] == "Bearer sk-project-own-key-1234"


def test_upstream_keys_refused_without_secret_key() -> None:
    with Gateway(upstream=double(), env={"LLMGATE_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN}) as other:
        response = manage(other, "POST", "/projects", json={"name": "k", "upstream_keys": {"openai": "sk-x"}})
        assert response.status_code == 400 and "LLMGATE_SECRET_KEY" in response.json()["error"]["message"]


def test_anthropic_route_checks_tokens_and_answers_in_its_format(gw: Gateway) -> None:
    project = manage(gw, "POST", "/projects", json={"name": "anthropic-callers"}).json()
    token = new_token(gw, project, allowed_models=["gpt-4o-mini"])
    body = {"model": "gpt-4o-mini", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-api-key": token["secret"], "anthropic-version": "2023-06-01"}
    assert gw.post("/v1/messages", json=body, headers=headers, auth=False).status_code == 200
    wrong = gw.post("/v1/messages", json={**body, "model": "other"}, headers=headers, auth=False)
    assert wrong.status_code == 403 and wrong.json()["error"]["type"] == "permission_error"
    manage(gw, "DELETE", f"/tokens/{token['id']}")
    revoked = gw.post("/v1/messages", json=body, headers=headers, auth=False)
    assert revoked.status_code == 401 and revoked.json()["type"] == "error"


class DownStore(CountingStore):
    """The real store, until it is `down`: then every lookup fails as a dead database's driver would."""

    down = False

    async def find_token(self, secret_hash: str) -> Token | None:
        if self.down:
            self.lookups += 1
            raise ConnectionRefusedError("the database is down")
        return await super().find_token(secret_hash)


def test_while_the_store_is_down_cached_tokens_work_for_a_bounded_time_and_others_get_503(tmp_path: Path) -> None:
    from llmgate.access.tokens import STALE_S, STORE_RETRY_S
    from llmgate.errors import StoreUnavailable

    async def run() -> None:
        store = DownStore(str(tmp_path / "t.db"))
        await store.open()
        await store.create_project(Project(id="p", name="p", created_at=NOW, updated_at=NOW))
        secret = new_secret()
        await store.create_token(Token(id="t", project_id="p", prefix=display_prefix(secret),
                                       secret_hash=hash_secret(secret), created_at=NOW, updated_at=NOW))
        clock = Clock()
        cache = TokenCache(store, KeyBox("k" * 20), 10.0, 1.0, clock)
        cached = await cache.load(hash_secret(secret))
        store.down = True
        clock.now += 11  # past the TTL: the store is asked, fails, and the entry still serves
        assert cache.lookup(hash_secret(secret), clock.now) is None
        assert await cache.load(hash_secret(secret)) is cached
        with pytest.raises(StoreUnavailable) as refused:  # never cached: no way to check it
            await cache.load(hash_secret(new_secret()))
        assert refused.value.status == 503 and refused.value.headers["retry-after"] == "1"
        assert store.lookups == 2  # the first load, the failed one; not asked again within STORE_RETRY_S
        clock.now += STORE_RETRY_S
        assert await cache.load(hash_secret(secret)) is cached and store.lookups == 3
        clock.now += STALE_S  # too stale now
        with pytest.raises(StoreUnavailable):
            await cache.load(hash_secret(secret))
        store.down = False
        clock.now += STORE_RETRY_S
        assert await cache.load(hash_secret(secret)) is cached and cached.loaded_at == clock.now  # back: reloaded
        cache.forget(hash_secret(secret))  # revoked: never served from the cache
        store.down = True
        with pytest.raises(StoreUnavailable):
            await cache.load(hash_secret(secret))
        await store.close()

    asyncio.run(run())
