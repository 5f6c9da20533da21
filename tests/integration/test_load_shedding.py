"""Load shedding under granian: while the event loop lags past LLMGATE_SHED_LAG_MS, /v1 answers 503 at once.

The loop is blocked on purpose by a test-only route (tests/integration/blocking_app.py), never by a setting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, sample, scrape_until, start_test_app

AUTH = {"authorization": f"Bearer {MASTER_KEY}"}
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
MESSAGES = {"model": "claude-x", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def blocking_gateway(upstream: str) -> Iterator[Gateway]:
    env = gateway_env(upstream, LLMGATE_SHED_LAG_MS="100")
    with start_test_app(env, "tests.integration.blocking_app:create_app") as gw:
        yield gw


def test_requests_are_shed_while_the_loop_lags_and_served_after(blocking_gateway: Gateway) -> None:
    url = blocking_gateway.url
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.post("/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200
        quiet = client.get("/health").json()
        assert quiet["loop_lag_ms"] < 100
        # ~2.1 s of a mostly blocked loop: 300 ms blocks, 50 ms apart (every lag sample comes out late).
        assert client.post("/_test/block", params={"ms": 300, "times": 6, "gap_ms": 50}).status_code == 202
        time.sleep(0.8)
        shed = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
        anthropic = client.post("/v1/messages", json=MESSAGES, headers=AUTH)
        lagging = client.get("/health").json()
        time.sleep(1.6)  # the blocks are over
        deadline = time.monotonic() + 10
        while client.get("/health").json()["loop_lag_ms"] >= 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        served = client.post("/v1/chat/completions", json=CHAT, headers=AUTH)
    assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
    assert shed.headers["x-request-id"]
    error = shed.json()["error"]
    assert error["code"] == "overloaded" and error["type"] == "server_error" and "ms behind" in error["message"]
    assert anthropic.status_code == 503 and anthropic.headers["retry-after"] == "1"
    assert anthropic.json()["type"] == "error" and "overloaded" in anthropic.json()["error"]["message"]
    assert lagging["loop_lag_ms"] >= 100 and lagging["loop_lag_peak_ms"] >= 250
    assert served.status_code == 200
    # Shed before the body is read: no model is known.
    shed_chat = {"route": "/v1/chat/completions", "model": "", "status": "503"}
    metrics = scrape_until(url, "llmgate_requests_total", shed_chat, 1)
    assert sample(metrics, "llmgate_requests_total", **shed_chat) == 1
    assert sample(metrics, "llmgate_requests_total", route="/v1/messages", model="", status="503") == 1
    assert sample(metrics, "llmgate_errors_total", route="/v1/chat/completions", error="overloaded") == 1


def test_health_and_the_management_api_are_never_shed(blocking_gateway: Gateway) -> None:
    with httpx.Client(base_url=blocking_gateway.url, timeout=30) as client:
        assert client.post("/_test/block", params={"ms": 300, "times": 4, "gap_ms": 50}).status_code == 202
        time.sleep(0.5)
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
        time.sleep(1.5)
