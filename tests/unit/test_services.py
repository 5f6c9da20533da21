"""The composition root (services.py): what a gateway holds, built from the settings; opened and closed with
the app, upstream clients included; /v1 handed the current configuration generation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from llmgate.config import ProviderConfig, Settings, load_settings
from llmgate.services import Services
from llmgate.usage.sinks.http import HttpSink
from llmgate.usage.sinks.jsonl import JsonlSink
from llmgate.usage.sinks.store import StoreSink
from tests.inprocess.gateway import FakeClock, Gateway
from tests.inprocess.upstream import FakeUpstream, Sent, replies


def settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"OPENAI_API_KEY": "sk-up-0000000000001", "LLMGATE_DATA_DIR": str(tmp_path), **env})


def sinks(services: Services) -> list[type]:
    return [type(sink) for sink in services.bus.sinks]


def test_the_usage_sinks_follow_the_settings(tmp_path: Path) -> None:
    assert sinks(Services(settings(tmp_path))) == [StoreSink]  # the default: usage logged to the store
    assert sinks(Services(settings(tmp_path, LLMGATE_USAGE_LOG="0"))) == []
    others = Services(settings(tmp_path, LLMGATE_USAGE_JSONL=str(tmp_path / "u.jsonl"),
                               LLMGATE_USAGE_HTTP_URL="http://collector.test/usage", LLMGATE_USAGE_STORE="0"))
    assert sinks(others) == [JsonlSink, HttpSink]


def test_opening_decides_access_and_opens_the_clients_closing_closes_them(tmp_path: Path) -> None:
    made: list[FakeUpstream] = []
    log: list[Sent] = []

    def client(provider: ProviderConfig) -> Any:
        made.append(FakeUpstream(provider, replies(), log))
        return made[-1]

    clock = FakeClock(5.0)
    services = Services(settings(tmp_path), clients=client, clock=clock)
    assert [c.provider.name for c in made] == ["openai"] and services.upstreams.clock is clock
    assert not services.authenticator.is_open  # closed until the store has said it holds no token

    async def main() -> None:
        await services.open()
        assert made[0].is_open and services.authenticator.is_open  # no master key, no token: open
        await services.close()
        assert not made[0].is_open

    asyncio.run(main())


def test_v1_is_handed_the_current_generation() -> None:
    with Gateway('[[providers]]\nname = "a"\nbase_url = "http://a.test/v1"\n') as gw:
        v1 = gw.services.v1_services()
        first = v1.upstreams()
        gw.write_config('[[providers]]\nname = "b"\nbase_url = "http://b.test/v1"\n')
        assert gw.reload()
        assert v1.upstreams() is gw.services.upstreams is not first
        assert list(v1.upstreams().clients) == ["b"]
