"""The settle step (pipeline/settle.py) in process: what an answer used (LLM tokens, and their cost at the
configured prices) goes to the caller's token, whole answers, streams and translated answers alike."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.inprocess.access import TOKENS_ENV, chat, manage, new_token, until
from tests.inprocess.gateway import Gateway
from tests.inprocess.upstream import DOUBLE_URL, ask_double, double

ENV = {**TOKENS_ENV, "OPENAI_BASE_URL": f"{DOUBLE_URL}/v1", "LLMGATE_USAGE_FLUSH_S": "0.05"}


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with Gateway(upstream=double(), env=ENV) as gateway:
        yield gateway


def bearer(token: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {"authorization": f"Bearer {token['secret']}"}


def test_token_budget_counts_usage(gw: Gateway) -> None:
    token = new_token(gw, budget_tokens=50, tpm_limit=1000)  # the double answers 35 tokens per completion
    assert [chat(gw, token["secret"]).status_code for _ in range(3)] == [200, 200, 429]
    response = chat(gw, token["secret"])
    assert response.json()["error"]["code"] == "token_budget_exhausted" and "retry-after" not in response.headers
    assert until(gw, lambda: manage(gw, "GET", f"/tokens/{token['id']}").json()["tokens_used"] == 70)
    assert manage(gw, "GET", f"/tokens/{token['id']}").json()["request_count"] == 2


def test_streamed_usage_counts_when_the_request_asks_for_it(gw: Gateway) -> None:
    token = new_token(gw, budget_tokens=10)
    body = {"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    response = gw.post("/v1/chat/completions", json=body, headers=bearer(token), auth=False)
    assert response.status_code == 200
    assert b'"usage"' in response.content, "the double should send a usage chunk"
    assert chat(gw, token["secret"]).json()["error"]["code"] == "token_budget_exhausted"


def test_streamed_usage_counts_when_the_request_does_not_ask_and_the_client_sees_no_usage(gw: Gateway) -> None:
    token = new_token(gw, budget_tokens=10)
    body = b'{"model": "m", "messages": [], "stream": true}'
    direct = gw.run(ask_double("POST", "/v1/chat/completions", {"content-type": "application/json"}, body))[2]
    through = gw.post("/v1/chat/completions", content=body, headers=bearer(token), auth=False)
    assert through.status_code == 200
    # the same bytes the upstream sends for the client's own request (ids and timestamps are fixed in the double)
    assert through.content == direct and b'"usage":{' not in through.content
    assert chat(gw, token["secret"]).json()["error"]["code"] == "token_budget_exhausted"


@pytest.mark.parametrize("stream", [False, True])
def test_translated_requests_are_metered(gw: Gateway, stream: bool) -> None:
    token = new_token(gw, budget_tokens=10)
    # /v1/messages for a model only the OpenAI-compatible provider serves: translated both ways
    body = {"model": "gpt-4o-mini", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}
    answer = gw.post("/v1/messages", json=body, headers={"x-api-key": token["secret"]}, auth=False)
    assert answer.status_code == 200, answer.text
    assert (b"message_stop" in answer.content) if stream else answer.json()["type"] == "message"
    assert chat(gw, token["secret"]).json()["error"]["code"] == "token_budget_exhausted"


def test_cost_budget_at_the_configured_prices() -> None:
    config = f"""
[[providers]]
name = "openai"
base_url = "{DOUBLE_URL}/v1"
api_key = "env:OPENAI_API_KEY"

[prices."gpt-4o-mini"]
input_per_mtok = 1000
output_per_mtok = 2000
"""
    with Gateway(config, double(), env={**ENV, "LLMGATE_USAGE_FLUSH_S": "0.05"}) as gateway:
        token = new_token(gateway, budget_cost=0.1)
        # the double's answers: 11 prompt + 24 completion tokens = 0.011 + 0.048 = 0.059 each
        assert chat(gateway, token["secret"]).status_code == 200
        assert chat(gateway, token["secret"]).status_code == 200
        refused = chat(gateway, token["secret"])
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "cost_budget_exhausted"
        stored = until(gateway, lambda: (t := manage(gateway, "GET", f"/tokens/{token['id']}").json())["cost_used"]
                       and t)  # the write-back
    assert stored["budget_cost"] == 0.1 and stored["cost_used"] == pytest.approx(0.118)

