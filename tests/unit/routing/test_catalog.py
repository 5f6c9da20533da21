"""The /v1/models listing: declared models, upstream lists, TTL, single flight, stale on failure."""

import asyncio

import pytest

from llmgate.config import ProviderConfig
from llmgate.routing.catalog import ModelCatalog
from llmgate.routing.table import RoutingTable
from tests.inprocess.gateway import Gateway


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    """An in-memory `fetch`: counts calls, can be made slow or failing."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.models = [{"id": "m1", "object": "model", "created": 1, "owned_by": "up"}]

    async def __call__(self, provider: str) -> list[dict]:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ConnectionError("down")
        return [dict(m, owned_by=provider) for m in self.models]


def make(upstream: Upstream, clock: FakeClock, *providers: ProviderConfig) -> ModelCatalog:
    table = RoutingTable(providers or (ProviderConfig(name="openai", base_url="http://x"),))
    return ModelCatalog(table, upstream, ttl_s=60, clock=clock)


def test_lists_upstream_models_and_caches_for_the_ttl() -> None:
    upstream, clock = Upstream(), FakeClock()
    catalog = make(upstream, clock)

    async def scenario() -> None:
        assert [m["id"] for m in await catalog.list_models()] == ["m1"]
        upstream.models = [{"id": "m2"}]
        clock.now += 59
        assert [m["id"] for m in await catalog.list_models()] == ["m1"]
        clock.now += 2
        assert [m["id"] for m in await catalog.list_models()] == ["m2"]

    asyncio.run(scenario())
    assert upstream.calls == 2


def test_one_fetch_in_flight_however_many_miss() -> None:
    upstream, clock = Upstream(), FakeClock()
    catalog = make(upstream, clock)

    async def scenario() -> list[list[dict]]:
        upstream.gate = asyncio.Event()
        waiting = [asyncio.ensure_future(catalog.list_models()) for _ in range(50)]
        await asyncio.sleep(0)
        upstream.gate.set()
        return await asyncio.gather(*waiting)

    results = asyncio.run(scenario())
    assert upstream.calls == 1
    assert all(r == results[0] for r in results)


def test_stale_list_served_when_refresh_fails_and_error_when_none() -> None:
    upstream, clock = Upstream(), FakeClock()
    catalog = make(upstream, clock)

    async def scenario() -> None:
        await catalog.list_models()
        upstream.fail = True
        clock.now += 120
        assert [m["id"] for m in await catalog.list_models()] == ["m1"]

    asyncio.run(scenario())
    never_fetched = Upstream()
    never_fetched.fail = True
    with pytest.raises(ConnectionError):
        asyncio.run(make(never_fetched, clock).list_models())


def test_declared_models_merge_with_catch_all_lists() -> None:
    upstream, clock = Upstream(), FakeClock()
    upstream.models = [{"id": "gpt-4o"}, {"id": "llama3"}]
    catalog = make(upstream, clock, ProviderConfig(name="a", base_url="http://a", models=("gpt-4o", "o1")),
                   ProviderConfig(name="local", base_url="http://l"))

    async def scenario() -> None:
        models = await catalog.list_models()
        assert [(m["id"], m["owned_by"]) for m in models] == [("gpt-4o", "a"), ("o1", "a"), ("llama3", "local")]
        assert (await catalog.get_model("llama3"))["owned_by"] == "local"
        assert await catalog.get_model("nope") is None

    asyncio.run(scenario())


def test_no_catch_all_means_no_upstream_call() -> None:
    upstream, clock = Upstream(), FakeClock()
    catalog = make(upstream, clock, ProviderConfig(name="a", base_url="http://a", models=("x",)))
    assert [m["id"] for m in asyncio.run(catalog.list_models())] == ["x"]
    assert upstream.calls == 0


def test_anthropic_model_objects_are_listed_in_openai_shape() -> None:
    from llmgate.routing.catalog import as_openai_model

    anthropic = {"type": "model", "id": "claude-x", "display_name": "Claude X", "created_at": "2025-02-19T00:00:00Z"}
    assert as_openai_model(anthropic, "anthropic") == {"id": "claude-x", "object": "model", "created": 1739923200,
                                                       "owned_by": "anthropic"}
    openai = {"id": "gpt-4o", "object": "model", "created": 5, "owned_by": "system"}
    assert as_openai_model(openai, "openai") is openai
    assert as_openai_model({"id": "odd", "created_at": "yesterday"}, "p")["created"] == 0


def test_models_list_merges_declared_and_upstream(small_gateway: Gateway) -> None:
    """Through the app, against the double run in process."""
    ids = [m["id"] for m in small_gateway.get("/v1/models").json()["data"]]
    assert ids[0] == "special-model" and "gpt-4o-mini" in ids
