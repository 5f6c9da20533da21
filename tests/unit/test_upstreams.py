"""One configuration generation (upstreams.py): what the model catalog asks each provider for, the catalog's
cache on routing's clock, and retired clients closed after the generation's last request."""

from __future__ import annotations

import asyncio

from llmgate.config import load_settings
from llmgate.upstreams import Upstreams
from tests.inprocess.gateway import FakeClock, Gateway
from tests.inprocess.upstream import FakeUpstream, Reply, Sent, reply_json

CONFIG = """
[server]
models_cache_ttl_s = 60

[[providers]]
name = "claude"
kind = "anthropic"
base_url = "http://claude.test"
api_keys = ["sk-ant-first-000000000001", "sk-ant-second-00000000002"]
models = ["claude-*"]

[[providers]]
name = "openai"
base_url = "http://openai.test/v1"
api_key = "sk-openai-0000000000001"
"""


def lists(sent: Sent) -> Reply:
    if sent.provider == "claude":
        return reply_json({"data": [{"type": "model", "id": "claude-x", "created_at": "2025-01-01T00:00:00Z"}]})
    return reply_json({"object": "list", "data": [{"id": "gpt-x", "object": "model", "created": 1, "owned_by": "o"}]})


def test_each_provider_is_asked_for_its_list_in_its_own_shape() -> None:
    with Gateway(CONFIG, lists) as gw:
        ids = [m["id"] for m in gw.get("/v1/models").json()["data"]]
        assert ids == ["gpt-x", "claude-x"]
        by_provider = {s.provider: s for s in gw.sent}
        claude, openai = by_provider["claude"], by_provider["openai"]
        assert (claude.method, claude.path) == ("GET", "/v1/models?limit=1000")  # Anthropic pages by 20 otherwise
        assert claude.key == "sk-ant-first-000000000001" and claude.headers["anthropic-version"]
        assert (openai.path, openai.key) == ("/v1/models", "sk-openai-0000000000001")


def test_the_lists_are_cached_on_routings_clock() -> None:
    with Gateway(CONFIG, lists) as gw:
        gw.get("/v1/models")
        gw.get("/v1/models")
        assert len(gw.sent) == 2  # one list per provider, then the cache
        gw.clock.advance(61)
        gw.get("/v1/models")
        assert len(gw.sent) == 4


def test_retired_clients_close_after_the_last_request_of_their_generation(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "llmgate.toml").write_text(CONFIG)
    settings = load_settings({"LLMGATE_CONFIG": str(tmp_path / "llmgate.toml")})

    async def main() -> None:
        client = FakeUpstream(settings.providers[1], lists, [])
        await client.open()
        upstreams = Upstreams(settings, {"openai": client}, clock=FakeClock())
        upstreams.active = 2
        upstreams.retired = [client]
        upstreams.leave()
        await asyncio.sleep(0)
        assert client.is_open  # one request is still on it
        upstreams.leave()
        for _ in range(10):
            await asyncio.sleep(0)
        assert not client.is_open and upstreams.retired is None

    asyncio.run(main())
