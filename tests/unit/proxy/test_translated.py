"""Translated calls (proxy/translated.py): the headers of a translated answer; and, in process against the double,
translated requests getting what passthrough requests get: retries on the next deployment, fallbacks,
cooldowns."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmgate.proxy.translated import translated_headers
from llmgate.usage.event import Exchange
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, refusing
from tests.servers import MASTER_KEY


def test_body_headers_replaced_and_ids_kept() -> None:
    # names lower-cased, as proxy/client.py gives them
    upstream = [(b"content-type", b"application/json"), (b"content-length", b"123"), (b"content-encoding", b"gzip"),
                (b"request-id", b"req_1"), (b"anthropic-ratelimit-requests-remaining", b"9"),
                (b"transfer-encoding", b"chunked")]
    exchange = Exchange(b"ours", "POST", "/v1/chat/completions")
    assert translated_headers(upstream, exchange, b"text/event-stream") == [
        (b"x-request-id", b"ours"), (b"request-id", b"req_1"), (b"anthropic-ratelimit-requests-remaining", b"9"),
        (b"x-upstream-request-id", b"req_1"), (b"content-type", b"text/event-stream")]
    assert exchange.upstream_request_id == b"req_1"  # for the usage event and the logs


HI = [{"role": "user", "content": "hi"}]
AUTH = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    config = f"""
[routing]
backoff_base_ms = 1

[[providers]]
name = "anthropic-down"
kind = "anthropic"
base_url = "{DOUBLE_URL}/_mock/status=529"
api_key = "sk-ant-down-000000000000"

[[providers]]
name = "anthropic-dead"
kind = "anthropic"
base_url = "http://dead.test"
api_key = "sk-ant-dead-000000000000"
timeouts = {{ connect_s = 2 }}

[[providers]]
name = "anthropic"
kind = "anthropic"
base_url = "{DOUBLE_URL}/ok"
api_key = "sk-ant-ok-00000000000000"

[[providers]]
name = "openai-limited"
base_url = "{DOUBLE_URL}/_mock/status=429/v1"
api_key = "sk-limited-000000000000"

[[providers]]
name = "openai"
base_url = "{DOUBLE_URL}/v1"
api_key = "sk-openai-ok-0000000000"

[[models]]
name = "claude-pool"
deployments = [{{ provider = "anthropic-down", model = "claude-a", weight = 1000000 }},
               {{ provider = "anthropic", model = "claude-b", weight = 0.000001 }}]

[[models]]
name = "claude-primary"
deployments = [{{ provider = "anthropic-dead", model = "claude-c" }}]
fallbacks = ["claude-pool"]

[[models]]
name = "gpt-pool"
deployments = [{{ provider = "openai-limited", model = "gpt-a", weight = 1000000 }},
               {{ provider = "openai", model = "gpt-b", weight = 0.000001 }}]
"""
    with Gateway(config, refusing("anthropic-dead")) as gateway:
        yield gateway


@pytest.mark.parametrize("stream", [False, True])
def test_openai_client_fails_over_between_anthropic_deployments(gw: Gateway, stream: bool) -> None:
    r = gw.post("/v1/chat/completions", headers=AUTH, json={"model": "claude-pool", "messages": HI, "stream": stream})
    assert r.status_code == 200, r.text
    assert r.headers["x-llmgate-deployment"] == "anthropic/claude-b"
    assert int(r.headers["x-llmgate-attempts"]) >= 1
    if stream:
        assert r.text.rstrip().endswith("data: [DONE]") and "chat.completion.chunk" in r.text
    else:
        assert r.json()["object"] == "chat.completion" and r.json()["model"] == "claude-b"


def test_an_unreachable_alias_falls_back(gw: Gateway) -> None:
    r = gw.post("/v1/chat/completions", headers=AUTH, json={"model": "claude-primary", "messages": HI})
    assert r.status_code == 200, r.text
    assert r.headers["x-llmgate-deployment"] == "anthropic/claude-b"
    assert int(r.headers["x-llmgate-attempts"]) >= 2  # the dead one, (the pool's 529 one,) the good one


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_client_fails_over_past_a_rate_limited_openai_deployment(gw: Gateway, stream: bool) -> None:
    r = gw.post("/v1/messages", headers={"x-api-key": MASTER_KEY}, auth=False,
                json={"model": "gpt-pool", "max_tokens": 16, "messages": HI, "stream": stream})
    assert r.status_code == 200, r.text
    assert r.headers["x-llmgate-deployment"] == "openai/gpt-b"
    if stream:
        assert "event: message_stop" in r.text
    else:
        assert r.json()["type"] == "message"


def test_when_every_attempt_fails_the_last_answer_is_translated(gw: Gateway) -> None:
    r = gw.post("/v1/messages", headers={"x-api-key": MASTER_KEY, "x-mock-status": "500"}, auth=False,
                json={"model": "gpt-pool", "max_tokens": 16, "messages": HI})
    assert r.status_code == 500 and r.json()["type"] == "error"  # Anthropic's error shape
    assert r.headers["x-llmgate-deployment"] == "openai/gpt-b"  # the rate-limited key is still resting
