"""The response cache across two real llmgate processes sharing a real Redis, counted at the upstream double:
identical requests at once make one upstream call, and the other instance answers from Redis (streams byte for
byte)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def pair(upstream: str, redis_url: str) -> Iterator[tuple[Gateway, Gateway]]:
    extra = {"LLMGATE_REDIS_URL": redis_url, "LLMGATE_CACHE_TTL_S": "600", "LLMGATE_USAGE_LOG": "0"}
    with start_gateway(gateway_env(upstream, **extra)) as a, start_gateway(gateway_env(upstream, **extra)) as b:
        yield a, b


def upstream_count(upstream: str) -> int:
    return int(httpx.get(f"{upstream}/_seen").json()["count"])


def chat(prompt: str, **extra: object) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}], **extra}


def test_ten_identical_requests_make_one_upstream_call_and_the_other_instance_hits(
        pair: tuple[Gateway, Gateway], upstream: str) -> None:
    a, b = pair
    body = chat(f"single flight {time.monotonic_ns()}")
    before = upstream_count(upstream)

    async def ten() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            return await asyncio.gather(*(
                client.post(f"{a.url}/v1/chat/completions", json=body,
                            headers={**AUTH, "x-mock-delay-ms": "300"}) for _ in range(10)))

    answers = asyncio.run(ten())
    assert [r.status_code for r in answers] == [200] * 10
    assert sorted(r.headers["x-llmgate-cache"] for r in answers) == ["hit"] * 9 + ["miss"]
    assert len({r.content for r in answers}) == 1
    assert upstream_count(upstream) == before + 1
    other = httpx.post(f"{b.url}/v1/chat/completions", json=body, headers=AUTH)
    assert other.headers["x-llmgate-cache"] == "hit" and other.content == answers[0].content
    assert upstream_count(upstream) == before + 1


def test_a_stream_kept_by_one_instance_is_replayed_by_the_other_byte_for_byte(
        pair: tuple[Gateway, Gateway], upstream: str) -> None:
    a, b = pair
    body = chat(f"stream {time.monotonic_ns()}", stream=True)
    first = httpx.post(f"{a.url}/v1/chat/completions", json=body, headers=AUTH)
    before = upstream_count(upstream)
    again = httpx.post(f"{b.url}/v1/chat/completions", json=body, headers=AUTH)
    assert (first.headers["x-llmgate-cache"], again.headers["x-llmgate-cache"]) == ("miss", "hit")
    assert again.content == first.content and first.content.endswith(b"data: [DONE]\n\n")
    assert again.headers["content-type"].startswith("text/event-stream")
    assert upstream_count(upstream) == before
