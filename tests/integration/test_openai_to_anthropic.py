"""The official OpenAI SDK against models an Anthropic-shaped upstream serves: requests, streams, tool calls and
errors translated both ways."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest

from llmgate.translate.chat_to_messages import DEFAULT_MAX_TOKENS
from tests.integration.conftest import ANTHROPIC_UPSTREAM_KEY
from tests.servers import MASTER_KEY, Gateway
from tests.upstream_double import PNG_1X1

HI = [{"role": "user", "content": "hi"}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
PIXEL = "data:image/png;base64," + PNG_1X1


@pytest.fixture
def client(two_dialect_gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{two_dialect_gateway.url}/v1", api_key=MASTER_KEY, max_retries=0,
                       timeout=10) as sdk:
        yield sdk


def last_request(upstream: str) -> dict:
    return httpx.get(f"{upstream}/_seen").json()


def test_chat(client: openai.OpenAI, upstream: str) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="claude-x", messages=[{"role": "system", "content": "be brief"}, *HI], temperature=0.2,
        stop=["END"], user="u-1", extra_headers={"openai-organization": "org-1", "x-trace": "t-1"})
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.model == "claude-x"
    assert completion.choices[0].message.content == "Hello from the mock upstream."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.total_tokens) == (11, 18)
    assert raw.headers["x-upstream-request-id"].startswith("up-") and raw.headers["x-request-id"]
    seen = last_request(upstream)
    assert seen["last_path"] == "/v1/messages" and seen["last_auth"] == ANTHROPIC_UPSTREAM_KEY
    assert seen["last_headers"]["anthropic-version"] == "2023-06-01" and seen["last_headers"]["x-trace"] == "t-1"
    assert "openai-organization" not in seen["last_headers"] and "authorization" not in seen["last_headers"]
    assert json.loads(seen["last_body"]) == {
        "model": "claude-x", "system": "be brief", "messages": HI, "max_tokens": DEFAULT_MAX_TOKENS,
        "temperature": 0.2, "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}}


def test_chat_stream_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="claude-x", messages=HI, stream=True,
                                            stream_options={"include_usage": True},
                                            extra_headers={"x-mock-chunks": "3"})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "tok0 tok1 tok2 "
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) \
        == (11, 3)
    plain = list(client.chat.completions.create(model="claude-x", messages=HI, stream=True,
                                                extra_headers={"x-mock-chunks": "2"}))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"


def test_stream_ends_with_done(two_dialect_gateway: Gateway) -> None:
    r = httpx.post(f"{two_dialect_gateway.url}/v1/chat/completions", headers={"authorization": f"Bearer {MASTER_KEY}",
                   "x-mock-chunks": "1"}, json={"model": "claude-x", "messages": HI, "stream": True})
    assert r.headers["content-type"] == "text/event-stream" and "content-length" not in r.headers
    assert r.text.endswith("data: [DONE]\n\n") and "event:" not in r.text


def test_tool_call_then_result(client: openai.OpenAI, upstream: str) -> None:
    completion = client.chat.completions.create(model="claude-x", messages=HI, tools=[WEATHER],
                                                tool_choice="required", parallel_tool_calls=False)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me check."
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "mock"}
    sent = json.loads(last_request(upstream)["last_body"])
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather in a city",
                              "input_schema": WEATHER["function"]["parameters"]}]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    follow_up = [*HI, choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    answer = client.chat.completions.create(model="claude-x", messages=follow_up, tools=[WEATHER])
    assert answer.choices[0].finish_reason == "stop"  # the double checked tool_result → tool_use pairing
    turn = json.loads(last_request(upstream)["last_body"])["messages"]
    assert turn[-1] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                     "content": "sunny"}]}


def test_tool_call_stream(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="claude-x", messages=HI, tools=[WEATHER], stream=True))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert calls[0].id == "toolu_mock" and calls[0].function.name == "get_weather"
    assert json.loads("".join(tc.function.arguments or "" for tc in calls)) == {"city": "mock"}
    assert {tc.index for tc in calls} == {0}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_image_parts(client: openai.OpenAI, upstream: str) -> None:
    client.chat.completions.create(model="claude-x", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": PIXEL}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    blocks = json.loads(last_request(upstream)["last_body"])["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                     "data": PIXEL.split(",", 1)[1]}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}


def test_upstream_errors_in_openai_format(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="claude-x", messages=HI, extra_headers={"x-mock-status": "429"})
    assert limited.value.body == {"message": "mock error 429", "type": "rate_limit_error", "param": None,
                                  "code": None}
    with pytest.raises(openai.InternalServerError) as overloaded:
        client.chat.completions.create(model="claude-x", messages=HI, stream=True,
                                       extra_headers={"x-mock-status": "529"})
    assert overloaded.value.status_code == 503
    with pytest.raises(openai.BadRequestError) as rejected:
        client.chat.completions.create(model="claude-x", messages=HI, extra_body={"temperature": 5, "top_p": "x"})
    assert rejected.value.body["param"] == "top_p"


def test_untranslatable_requests_are_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="claude-x", messages=HI, n=2)
    assert info.value.body["param"] == "n"
    with pytest.raises(openai.NotFoundError) as missing:  # Anthropic deployments have no embeddings capability
        client.embeddings.create(model="claude-x", input="hi")
    assert "does not support /v1/embeddings" in missing.value.body["message"]
    with pytest.raises(openai.InternalServerError) as unreachable:  # claude-dead's upstream refuses connections
        client.chat.completions.create(model="claude-dead", messages=HI)
    assert unreachable.value.status_code == 502 and unreachable.value.code == "upstream_unreachable"
