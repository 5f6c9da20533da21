"""ResponseCache (cache/flight.py): TTLs per alias over the default, and single-flight's bounded wait."""

from __future__ import annotations

import asyncio
from pathlib import Path

from llmgate.cache.flight import ResponseCache, open_cache
from llmgate.cache.store import Answer, MemoryStore
from llmgate.config import Settings, load_settings

ANSWER = Answer([], b"{}")


def settings(config: str, tmp_path: Path) -> Settings:
    path = tmp_path / "llmgate.toml"
    path.write_text(config)
    return load_settings({"OPENAI_API_KEY": "k"}, str(path))


CONFIG = """
[cache]
ttl_s = 60
wait_s = 0.05

[[providers]]
name = "up"
base_url = "http://up.test/v1"

[[models]]
name = "long"
cache = { ttl_s = 3600 }
deployments = [{ provider = "up" }]
"""


def test_an_alias_ttl_wins_over_the_default(tmp_path: Path) -> None:
    loaded = settings(CONFIG, tmp_path)
    cache = open_cache(loaded)
    assert isinstance(cache.store, MemoryStore)
    assert cache.ttl_s("long", loaded) == 3600 and cache.ttl_s("other", loaded) == 60
    without_default = settings(CONFIG.replace("ttl_s = 60\n", ""), tmp_path)  # a reload's settings
    assert cache.ttl_s("other", without_default) is None and cache.ttl_s("long", without_default) == 3600


def test_a_waiter_gets_the_leaders_answer_or_gives_up_after_wait_s(tmp_path: Path) -> None:
    cache = ResponseCache(settings(CONFIG, tmp_path), MemoryStore(1 << 20))

    async def scenario() -> tuple[Answer | None, Answer | None]:
        assert cache.in_flight("k") is None  # the first leads
        flight = cache.in_flight("k")
        assert flight is not None
        asyncio.get_running_loop().call_later(0.01, cache.land, "k", ANSWER)
        landed = await cache.wait(flight)
        assert cache.in_flight("slow") is None
        slow = cache.in_flight("slow")
        assert slow is not None
        return landed, await cache.wait(slow)  # nobody lands it: the wait ends after wait_s

    assert asyncio.run(scenario()) == (ANSWER, None)
