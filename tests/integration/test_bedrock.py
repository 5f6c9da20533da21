"""Bedrock through a real llmgate server and a real Bedrock double over sockets: the signature survives the
upstream clients (the model id's `:` percent-encoded in the path, the host header), whole answers, streams,
tool calls, Anthropic clients, and usage with its cost in /manage/usage."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.bedrock_double import AWS_ENV, run_bedrock_double
from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway, write_config

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MANAGE = "manage-token-bedrock-000002"
HI = [{"role": "user", "content": "hi there"}]


@pytest.fixture(scope="module")
def bedrock_gateway(upstream: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, str]]:
    with run_bedrock_double() as double:
        config = write_config(Path(tmp_path_factory.mktemp("bedrock")), f"""
[[providers]]
name = "bedrock"
kind = "bedrock"
region = "us-east-1"
base_url = "{double}"
models = ["anthropic.*", "meta.*"]

[prices."anthropic.*"]
input_per_mtok = 3.0
output_per_mtok = 15.0
""")
        env = gateway_env(upstream, LLMGATE_CONFIG=config, LLMGATE_MANAGEMENT_TOKEN=MANAGE,
                          LLMGATE_USAGE_FLUSH_S="0.05", **AWS_ENV)
        with start_gateway(env) as gw:
            yield gw, double


def test_openai_sdk_chat_stream_and_tools(bedrock_gateway: tuple[Gateway, str]) -> None:
    gw, double = bedrock_gateway
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        whole = client.chat.completions.create(model=CLAUDE, messages=HI)
        assert whole.choices[0].message.content == f"Hello from {CLAUDE}, you said: hi there"
        assert httpx.get(f"{double}/_seen").json()[0]["path"] == \
            "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse"
        chunks = list(client.chat.completions.create(model=CLAUDE, messages=HI, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
            whole.choices[0].message.content
        tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
        called = client.chat.completions.create(model="meta.llama3-70b-instruct-v1:0", messages=HI, tools=[tool])
        call = called.choices[0].message.tool_calls[0]  # type: ignore[index]
        assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}


def test_anthropic_sdk_stream(bedrock_gateway: tuple[Gateway, str]) -> None:
    gw, _ = bedrock_gateway
    with anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, timeout=10) as client, \
            client.messages.stream(model=CLAUDE, max_tokens=64, messages=HI) as stream:
        assert "".join(stream.text_stream) == f"Hello from {CLAUDE}, you said: hi there"


def test_usage_and_cost_in_manage_usage(bedrock_gateway: tuple[Gateway, str]) -> None:
    gw, _ = bedrock_gateway
    manage = {"authorization": f"Bearer {MANAGE}"}
    model = "anthropic.claude-instant-v1"
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0, timeout=10) as client:
        client.chat.completions.create(model=model, messages=HI)
        list(client.chat.completions.create(model=model, messages=HI, stream=True))
    deadline = time.monotonic() + 5
    while True:
        data = httpx.get(f"{gw.url}/manage/usage", params={"model": model}, headers=manage).json()["data"]
        if (data and data[0]["requests"] == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (data[0]["prompt_tokens"], data[0]["completion_tokens"]) == (4, 14)
    assert data[0]["cost"] == pytest.approx((4 * 3.0 + 14 * 15.0) / 1e6)
