"""Bedrock through llmgate, in process, against the Bedrock double (which verifies every SigV4 signature and
answers ConverseStream in event-stream framing): the OpenAI SDK's chat, streams, tool calls, errors and
cooldowns, usage and cost; the Anthropic SDK on /v1/messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from tests.bedrock_double import AWS_ENV, SEEN, in_process
from tests.inprocess.access import until
from tests.inprocess.gateway import Gateway
from tests.servers import MASTER_KEY

CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0"
MANAGE = "manage-token-bedrock-000001"
# The weights make east the first choice whenever it is available.
CONFIG = """
[routing]
backoff_base_ms = 1

[[providers]]
name = "bedrock"
kind = "bedrock"
region = "us-east-1"
base_url = "http://bedrock-east.test"
models = ["anthropic.*", "meta.*", "amazon.*"]

[[providers]]
name = "bedrock-west"
kind = "bedrock"
region = "us-east-1"
base_url = "http://bedrock-west.test"

[[models]]
name = "llama"
deployments = [{ provider = "bedrock", model = "meta.llama3-throttled", weight = 1e9 },
               { provider = "bedrock-west", model = "meta.llama3-70b-instruct-v1:0", weight = 1e-9 }]

[[models]]
name = "warming"
deployments = [{ provider = "bedrock", model = "meta.llama3-not-ready", weight = 1e9 },
               { provider = "bedrock-west", model = "meta.llama3-8b-instruct-v1:0", weight = 1e-9 }]

[prices."anthropic.claude-3-5-sonnet*"]
input_per_mtok = 3.0
output_per_mtok = 15.0
"""
HI = [{"role": "user", "content": "hi there"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather in a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The standard chain finds the double's credentials in the environment, and nothing else."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def gw(aws: None) -> Iterator[Gateway]:
    env = {"LLMGATE_MANAGEMENT_TOKEN": MANAGE, "LLMGATE_USAGE_FLUSH_S": "0.05"}
    with Gateway(CONFIG, in_process(), env=env) as gateway:
        SEEN.clear()
        yield gateway


def sdk(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0, http_client=gw.http)


def test_chat(gw: Gateway) -> None:
    raw = sdk(gw).chat.completions.with_raw_response.create(
        model=CLAUDE, messages=[{"role": "system", "content": "be brief"}, *HI], max_tokens=50, temperature=0.2,
        stop=["END"], extra_headers={"x-trace": "t-1"})
    completion = raw.parse()
    assert completion.choices[0].message.content == f"Hello from {CLAUDE}, you said: hi there"
    assert completion.choices[0].finish_reason == "stop" and completion.model == CLAUDE
    usage = completion.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (4, 7)
    assert raw.headers["x-llmgate-deployment"] == "bedrock"
    up = SEEN[-1]
    assert up["path"] == "/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse"
    assert up["body"] == {"messages": [{"role": "user", "content": [{"text": "hi there"}]}],
                          "system": [{"text": "be brief"}],
                          "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "stopSequences": ["END"]}}
    signed = up["headers"]["authorization"]
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token," in signed
    assert up["headers"]["x-trace"] == "t-1" and "accept" not in up["headers"]


def test_the_model_list_names_the_aliases_without_asking_bedrock(gw: Gateway) -> None:
    listed = gw.get("/v1/models")
    assert listed.status_code == 200 and {"llama", "warming"} <= {m["id"] for m in listed.json()["data"]}
    assert gw.sent == []


def test_max_tokens_ends_with_length(gw: Gateway) -> None:
    completion = sdk(gw).chat.completions.create(model="meta.llama3-8b", messages=HI, max_tokens=2)
    assert completion.choices[0].message.content == "Hello from" and completion.choices[0].finish_reason == "length"


def test_stream_reassembles_the_text_exactly(gw: Gateway) -> None:
    whole = sdk(gw).chat.completions.create(model=CLAUDE, messages=HI).choices[0].message.content
    chunks = list(sdk(gw).chat.completions.create(model=CLAUDE, messages=HI, stream=True,
                                                  stream_options={"include_usage": True}))
    assert SEEN[-1]["path"].endswith("/converse-stream")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")


def test_tool_call_round_trip(gw: Gateway) -> None:
    client = sdk(gw)
    messages: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = client.chat.completions.create(model=CLAUDE, messages=messages, tools=[WEATHER], tool_choice="auto")
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls" and first.choices[0].message.content == "Let me check."
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "tooluse_d0uble01", "get_weather", {"city": "Paris", "unit": "celsius"})
    assert SEEN[-1]["body"]["toolConfig"] == {"tools": [{"toolSpec": {
        "name": "get_weather", "description": "Weather in a city",
        "inputSchema": {"json": WEATHER["function"]["parameters"]}}}], "toolChoice": {"auto": {}}}
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    second = client.chat.completions.create(model=CLAUDE, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "The tool tooluse_d0uble01 said: sunny, 21 C"
    streamed = list(client.chat.completions.create(model=CLAUDE, messages=messages[:1], tools=[WEATHER], stream=True))
    arguments = "".join(c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index, union-attr]
                        for c in streamed if c.choices and c.choices[0].delta.tool_calls)
    assert json.loads(arguments) == {"city": "Paris", "unit": "celsius"}


def test_validation_error_is_a_400_in_openai_shape(gw: Gateway) -> None:
    response = gw.post("/v1/chat/completions", json={"model": "amazon.invalid-model", "messages": HI})
    assert response.status_code == 400
    assert response.json() == {"error": {"message": "The provided model identifier is invalid.",
                                         "type": "invalid_request_error", "param": None, "code": None}}
    streamed = gw.post("/v1/chat/completions", json={"model": "amazon.invalid-model", "messages": HI, "stream": True})
    assert streamed.status_code == 400 and streamed.json() == response.json()
    unsupported = gw.post("/v1/chat/completions", json={"model": CLAUDE, "messages": HI, "n": 3})
    assert unsupported.status_code == 400 and unsupported.json()["error"]["param"] == "n"
    embeddings = gw.post("/v1/embeddings", json={"model": CLAUDE, "input": "x"})
    assert embeddings.status_code == 404  # Bedrock serves chat only


def test_throttling_cools_the_credentials_down_and_fails_over(gw: Gateway) -> None:
    first = gw.post("/v1/chat/completions", json={"model": "llama", "messages": HI})
    assert first.status_code == 200 and first.headers["x-llmgate-attempts"] == "2"
    assert first.json()["model"] == "llama"
    assert [s.url.split("/model/")[0] for s in gw.sent] == ["http://bedrock-east.test", "http://bedrock-west.test"]
    second = gw.post("/v1/chat/completions", json={"model": "llama", "messages": HI})
    assert second.status_code == 200 and second.headers["x-llmgate-attempts"] == "1"  # east is resting
    alone = gw.post("/v1/chat/completions", json={"model": "meta.llama3-throttled", "messages": HI})
    assert alone.status_code == 429
    assert alone.json()["error"]["message"] in (
        "Too many requests, please wait before trying again.",
        "Every API key for `meta.llama3-throttled` is rate limited; retry in 30 s.")


def test_model_not_ready_is_transient_not_a_cooldown(gw: Gateway) -> None:
    for _ in range(2):
        response = gw.post("/v1/chat/completions", json={"model": "warming", "messages": HI, "stream": True})
        assert response.status_code == 200 and "8b-instruct" in response.text
        chunks = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
        assert {chunk["model"] for chunk in chunks} == {"warming"}  # the name asked for, as in whole answers
    # east was tried again the second time: its credentials were not put to rest
    assert [s.url.split("/model/")[0] for s in gw.sent].count("http://bedrock-east.test") == 2


def test_access_denied_is_the_callers_answer_and_keeps_the_credentials(gw: Gateway) -> None:
    for stream in (False, True):
        response = gw.post("/v1/chat/completions", json={"model": "meta.denied-model", "messages": HI,
                                                         "stream": stream})
        assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"
    assert len(gw.sent) == 2  # the second request reached Bedrock too: nothing was disabled


def test_a_stream_breaking_upstream_ends_with_an_error_event(gw: Gateway) -> None:
    with pytest.raises(openai.APIError, match=r"The model stopped unexpectedly\."):
        list(sdk(gw).chat.completions.create(model="meta.stream-error-model", messages=HI, stream=True))


def test_usage_and_cost_in_the_usage_api(gw: Gateway) -> None:
    sdk(gw).chat.completions.create(model=CLAUDE, messages=HI)
    list(sdk(gw).chat.completions.create(model=CLAUDE, messages=HI, stream=True))  # usage not asked for

    def summary() -> Any:
        data = gw.get("/manage/usage", headers={"authorization": f"Bearer {MANAGE}"}, auth=False).json()["data"]
        return data if data and data[0]["requests"] == 2 else None

    totals = until(gw, summary)[0]
    assert (totals["prompt_tokens"], totals["completion_tokens"], totals["total_tokens"]) == (4, 14, 18)
    assert totals["cost"] == pytest.approx((4 * 3.0 + 14 * 15.0) / 1e6)


def test_anthropic_sdk_on_messages_reaches_claude_on_bedrock(gw: Gateway) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, http_client=gw.http2)
    message = client.messages.create(model=CLAUDE, max_tokens=100, system="be brief",
                                     messages=[{"role": "user", "content": "hi there"}])
    assert message.content[0].text == f"Hello from {CLAUDE}, you said: hi there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn" and message.usage.output_tokens == 7
    assert SEEN[-1]["body"]["system"] == [{"text": "be brief"}]
    with client.messages.stream(model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "hi there"}]) as s:
        streamed = "".join(s.text_stream)
        final = s.get_final_message()
    assert streamed == message.content[0].text and final.usage.output_tokens == 7  # type: ignore[union-attr]
    assert SEEN[-1]["path"].endswith("/converse-stream")
    with pytest.raises(anthropic.RateLimitError):  # errors come back in Anthropic's shape
        client.messages.create(model="meta.llama3-throttled", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.APIStatusError, match=r"The model stopped unexpectedly\."), \
            client.messages.stream(model="meta.stream-error-model", max_tokens=64, messages=HI) as broken:
        "".join(broken.text_stream)


def test_missing_credentials_are_a_clear_500(monkeypatch: pytest.MonkeyPatch, aws: None) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with Gateway(CONFIG, in_process()) as gw:
        response = gw.post("/v1/chat/completions", json={"model": CLAUDE, "messages": HI})
        assert gw.sent == []
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "missing_upstream_credentials"
    assert "No AWS credentials for the provider `bedrock`" in response.json()["error"]["message"]
