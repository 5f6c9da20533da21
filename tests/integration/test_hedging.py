"""Opt-in hedging: a slow first attempt gets a second one raced against it; the first to answer is used."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway, write_config

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def hedged(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = write_config(tmp_path_factory.mktemp("hedge"), f"""
[[providers]]
name = "slow"
base_url = "{upstream}/_mock/delay-ms=2000/v1"

[[providers]]
name = "fast"
base_url = "{upstream}/v1"

[[models]]
name = "hedged"
hedge = {{ after_ms = 100, max_ratio = 1.0 }}
# the slow deployment is (almost always) picked first
deployments = [{{ provider = "slow", weight = 1000000 }}, {{ provider = "fast", weight = 0.000001 }}]
""")
    with start_gateway(gateway_env(upstream), "--config", config) as gw:
        yield gw


@pytest.mark.parametrize("stream", [False, True])
def test_the_hedge_answers_when_the_first_attempt_is_slow(hedged: Gateway, upstream: str, stream: bool) -> None:
    httpx.post(f"{upstream}/_reset")
    body = {"model": "hedged", "messages": [], "stream": stream}
    with httpx.stream("POST", f"{hedged.url}/v1/chat/completions", json=body, headers=AUTH, timeout=10) as response:
        data = response.read()
    assert response.status_code == 200
    assert response.headers["x-llmgate-deployment"] == "fast/hedged"
    assert response.headers["x-llmgate-hedges"] == "1"
    assert response.headers["x-llmgate-attempts"] == "2"
    assert data.endswith(b"data: [DONE]\n\n") if stream else b"chat.completion" in data
    assert "hedging hedged after" in hedged.logs()
    paths = [r["path"] for r in httpx.get(f"{upstream}/_seen").json()["recent"]]
    assert sorted(paths) == ["/_mock/delay-ms=2000/v1/chat/completions", "/v1/chat/completions"]
