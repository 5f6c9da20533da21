"""GET /metrics under granian: counts and labels after real requests, bearer auth, two workers summed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.servers import (
    MASTER_KEY,
    Gateway,
    free_port,
    gateway_env,
    sample,
    scrape,
    scrape_until,
    start_gateway,
    write_config,
)

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
METRICS_TOKEN = "metrics-scrape-token-0123456789"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def observed(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A passthrough provider, an alias whose two deployments answer 503 and 500 (one failure opens a breaker, so
    each is tried once), one whose deployment answers 429 (its key rests); the usage log on so tokens are read;
    /metrics behind a token."""
    config = write_config(tmp_path_factory.mktemp("metrics"), f"""
[routing]
max_attempts = 2
breaker_failures = 1
breaker_open_s = 600
backoff_base_ms = 1
backoff_max_ms = 2

[[providers]]
name = "failing"
base_url = "{upstream}/_mock/status=503/v1"
api_key = "sk-failing-key-0123456789"

[[providers]]
name = "failing-too"
base_url = "{upstream}/_mock/status=500/v1"
api_key = "sk-failing-too-key-0123456789"

[[providers]]
name = "limited"
base_url = "{upstream}/_mock/status=429,retry-after=300/v1"
api_key = "sk-limited-key-0123456789"

[[providers]]
name = "refused"
base_url = "http://127.0.0.1:{free_port()}/v1"
api_key = "sk-refused-key-0123456789"

[[providers]]
name = "openai"
base_url = "{upstream}/v1"
api_key = "env:OPENAI_API_KEY"

[[models]]
name = "flaky"
deployments = [{{ provider = "failing", model = "gpt-4o" }}, {{ provider = "failing-too", model = "gpt-4o" }}]

[[models]]
name = "gone"
deployments = [{{ provider = "refused", model = "gpt-4o" }}]

[[models]]
name = "busy"
deployments = [{{ provider = "limited", model = "gpt-4o" }}]
""")
    env = gateway_env(upstream, LLMGATE_CONFIG=config, LLMGATE_METRICS_TOKEN=METRICS_TOKEN, LLMGATE_USAGE_LOG="1")
    with start_gateway(env) as gw:
        yield gw


def test_requests_latency_tokens_retries_breakers_and_cooldowns(observed: Gateway) -> None:
    with httpx.Client(base_url=observed.url, headers=AUTH, timeout=30) as client:
        for _ in range(3):
            assert client.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "hi"}).status_code == 200
        assert client.post("/v1/chat/completions", json={**CHAT, "model": "flaky"}).status_code in (500, 503)
        assert client.post("/v1/chat/completions", json={**CHAT, "model": "busy"}).status_code == 429
        assert client.post("/v1/chat/completions", json={**CHAT, "model": "gone"}).status_code == 502
        assert client.post("/v1/nowhere", json=CHAT).status_code == 404
        assert client.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer wrong"}
                           ).status_code == 401
    chat = {"route": "/v1/chat/completions", "model": "gpt-4o-mini"}
    refused = {"route": "/v1/chat/completions", "model": "", "status": "401"}  # refused before its body was read
    found = scrape_until(observed.url, "llmgate_requests_total", refused, 1, token=METRICS_TOKEN)
    assert sample(found, "llmgate_requests_total", **refused) == 1
    assert sample(found, "llmgate_requests_total", **chat, status="200") == 3
    assert sample(found, "llmgate_requests_total", route="/v1/embeddings", model="text-embedding-3-small",
                  status="200") == 1
    assert sample(found, "llmgate_requests_total", route="/v1/chat/completions", model="flaky", status="503") + \
        sample(found, "llmgate_requests_total", route="/v1/chat/completions", model="flaky", status="500") == 1
    assert sample(found, "llmgate_requests_total", route="/v1/chat/completions", model="busy", status="429") == 1
    assert sample(found, "llmgate_requests_total", route="unmatched", model="", status="404") == 1
    assert sample(found, "llmgate_errors_total", route="unmatched", error="unknown_url") == 1
    assert sample(found, "llmgate_errors_total", route="/v1/chat/completions", error="invalid_api_key") == 1
    # Latency: every request has a total and an overhead; upstream time only where an upstream was called.
    assert sample(found, "llmgate_request_duration_seconds_count", **chat) == 3
    assert sample(found, "llmgate_upstream_duration_seconds_count", **chat) == 3
    assert sample(found, "llmgate_upstream_ttfb_seconds_count", **chat) == 3
    assert sample(found, "llmgate_upstream_duration_seconds_bucket", **chat, le="+Inf") == 3
    gone = {"route": "/v1/chat/completions", "model": "gone"}  # llmgate's own 502 after one attempt
    assert sample(found, "llmgate_requests_total", **gone, status="502") == 1
    assert sample(found, "llmgate_errors_total", route="/v1/chat/completions", error="upstream_unreachable") == 1
    assert sample(found, "llmgate_upstream_duration_seconds_count", **gone) == 1
    assert sample(found, "llmgate_overhead_seconds_count", route="/v1/chat/completions") == 7
    assert sample(found, "llmgate_overhead_seconds_sum", route="/v1/chat/completions") > 0
    # Tokens as the upstream double reports them: 11 prompt + 24 completion a chat answer.
    assert sample(found, "llmgate_tokens_total", model="gpt-4o-mini", kind="prompt") == 33
    assert sample(found, "llmgate_tokens_total", model="gpt-4o-mini", kind="completion") == 72
    assert sample(found, "llmgate_tokens_total", model="text-embedding-3-small", kind="prompt") > 0
    # Retries: the flaky alias was tried on both deployments (max_attempts = 2); each failure opened a breaker.
    assert sample(found, "llmgate_retries_total", route="/v1/chat/completions", model="flaky") == 1
    assert sample(found, "llmgate_retries_total", **chat) == 0
    for failed in ("failing/gpt-4o", "failing-too/gpt-4o"):
        assert sample(found, "llmgate_breaker_state", deployment=failed, state="open") == 1
        assert sample(found, "llmgate_breaker_state", deployment=failed, state="closed") == 0
        assert sample(found, "llmgate_breaker_opened_total", deployment=failed) == 1
    assert sample(found, "llmgate_breaker_state", deployment="openai", state="closed") == 1
    # The 429 rested the limited provider's key.
    assert sample(found, "llmgate_key_cooldowns_total", provider="limited") == 1
    assert sample(found, "llmgate_keys_resting", provider="limited") == 1
    assert sample(found, "llmgate_keys_resting", provider="openai") == 0
    assert ("llmgate_usage_queue_depth", frozenset()) in found
    assert sample(found, "llmgate_usage_events_spilled_total") == 0
    assert sample(found, "llmgate_usage_events_dropped_total") == 0
    assert sample(found, "llmgate_usage_sink_failures_total", sink="store") == 0
    assert sample(found, "llmgate_workers") == 1


def test_metrics_need_the_token_when_one_is_set(observed: Gateway) -> None:
    for headers in ({}, {"authorization": "Bearer wrong-token"}, {"authorization": METRICS_TOKEN}, AUTH):
        response = httpx.get(f"{observed.url}/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"]["code"] == "invalid_api_key"
        assert "llmgate_" not in response.text
    response = httpx.get(f"{observed.url}/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert "# TYPE llmgate_requests_total counter" in response.text


def test_metrics_are_open_without_a_token(gateway: Gateway) -> None:
    response = httpx.get(f"{gateway.url}/metrics")
    assert response.status_code == 200 and "# TYPE llmgate_request_duration_seconds histogram" in response.text


@pytest.fixture(scope="module")
def two_workers(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Path]]:
    """`llmgate serve --workers 2`; TMPDIR points into the test's dir, so the metrics dir it makes can be seen."""
    tmp = tmp_path_factory.mktemp("two-workers")
    with start_gateway(gateway_env(upstream, TMPDIR=str(tmp)), "--workers", "2") as gw:
        yield gw, tmp
    assert not list(tmp.glob("llmgate-metrics-*")), "the metrics dir outlived the server"


async def _concurrent_chats(url: str, total: int) -> list[int]:
    """`total` requests at once, each on its own connection and held 300 ms upstream: both workers take some."""
    async def one() -> int:
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.post(f"{url}/v1/chat/completions", json=CHAT,
                                         headers={**AUTH, "x-mock-delay-ms": "300"})
            return response.status_code

    return list(await asyncio.gather(*(one() for _ in range(total))))


def per_worker_requests(metrics_dir: Path) -> dict[str, float]:
    """llmgate_requests_total as each worker's own file holds it (pid → count)."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        families = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        counts[path.stem.split("_")[1]] = sum(s.value for family in families if family.name == "llmgate_requests"
                                              for s in family.samples if s.name == "llmgate_requests_total")
    return counts


def test_two_workers_are_summed_whichever_worker_is_scraped(two_workers: tuple[Gateway, Path]) -> None:
    gateway, tmp = two_workers
    (metrics_dir,) = tmp.glob("llmgate-metrics-*")
    statuses = asyncio.run(_concurrent_chats(gateway.url, 40))
    assert statuses == [200] * 40
    chat = {"route": "/v1/chat/completions", "model": "gpt-4o-mini", "status": "200"}
    scrape_until(gateway.url, "llmgate_requests_total", chat, 40)
    by_worker = per_worker_requests(metrics_dir)
    assert len(by_worker) == 2 and all(count > 0 for count in by_worker.values()), by_worker  # both served
    assert sum(by_worker.values()) == 40
    for _ in range(10):  # scrapes land on either worker: each sees the sum
        found = scrape(gateway.url)
        assert sample(found, "llmgate_requests_total", **chat) == 40
        assert sample(found, "llmgate_request_duration_seconds_count", route="/v1/chat/completions",
                      model="gpt-4o-mini") == 40
        assert sample(found, "llmgate_workers") == 2
        assert sample(found, "llmgate_breaker_state", deployment="openai", state="closed") == 2  # both workers
