"""The official Anthropic SDK against /v1/messages: natively to an Anthropic upstream, and translated to an
OpenAI-compatible one; errors in Anthropic's format either way."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import pytest

from llmgate.translate.messages_to_chat import convert_messages
from llmgate.usage.counting import count_chat_prompt_tokens
from tests.integration.conftest import ANTHROPIC_UPSTREAM_KEY
from tests.servers import MASTER_KEY, UPSTREAM_KEY, Gateway

HI = [{"role": "user", "content": "hi"}]
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def claude(two_dialect_gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=two_dialect_gateway.url, api_key=MASTER_KEY, max_retries=0,
                             timeout=10) as sdk:
        yield sdk


def seen(upstream: str) -> dict:
    return httpx.get(f"{upstream}/_seen").json()


# ---- native: an Anthropic provider ----

def test_native_message(claude: anthropic.Anthropic, upstream: str) -> None:
    raw = claude.messages.with_raw_response.create(
        model="claude-x", max_tokens=64, system="be brief", messages=HI,
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31", "x-request-id": "caller-id-1",
                       "anthropic-version": "2023-06-01"})
    message = raw.parse()
    assert message.content[0].text == "Hello from the mock upstream." and message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 11 and message.usage.output_tokens == 7
    assert raw.headers["x-request-id"] == "caller-id-1" and raw.headers["x-upstream-request-id"].startswith("up-")
    last = seen(upstream)
    assert last["last_path"] == "/v1/messages" and last["last_auth"] == ANTHROPIC_UPSTREAM_KEY
    assert last["last_headers"]["anthropic-version"] == "2023-06-01"
    assert last["last_headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "authorization" not in last["last_headers"]
    assert json.loads(last["last_body"]) == {"model": "claude-x", "max_tokens": 64, "system": "be brief",
                                             "messages": HI}


def test_native_stream_is_byte_for_byte(claude: anthropic.Anthropic, two_dialect_gateway: Gateway,
                                        upstream: str) -> None:
    body = {"model": "claude-x", "max_tokens": 64, "messages": HI, "stream": True}
    headers = {"x-mock-chunks": "4", "anthropic-version": "2023-06-01"}
    direct = httpx.post(f"{upstream}/v1/messages", json=body, headers={**headers, "x-api-key": "k"})
    through = httpx.post(f"{two_dialect_gateway.url}/v1/messages", json=body,
                         headers={**headers, "x-api-key": MASTER_KEY})
    assert through.status_code == 200 and through.content == direct.content
    with claude.messages.stream(model="claude-x", max_tokens=64, messages=HI,
                                extra_headers={"x-mock-chunks": "3"}) as stream:
        assert "".join(stream.text_stream) == "tok0 tok1 tok2 "
        assert stream.get_final_message().usage.output_tokens == 3


def test_native_count_tokens_and_tool_use(claude: anthropic.Anthropic, upstream: str) -> None:
    assert claude.messages.count_tokens(model="claude-x", messages=HI).input_tokens == 11
    assert seen(upstream)["last_path"] == "/v1/messages/count_tokens"
    message = claude.messages.create(model="claude-x", max_tokens=64, messages=HI, tools=[WEATHER])
    assert message.stop_reason == "tool_use" and message.content[1].input == {"city": "mock"}


def test_beta_header_and_query_string_pass_through(claude: anthropic.Anthropic, upstream: str) -> None:
    # older SDKs' beta client sent ?beta=true; the query string goes up as it came
    message = claude.beta.messages.create(model="claude-x", max_tokens=8, messages=HI, extra_query={"beta": "true"},
                                          betas=["token-efficient-tools-2025-02-19"])
    assert message.content[0].text
    last = seen(upstream)
    assert last["last_path"] == "/v1/messages?beta=true"
    assert last["last_headers"]["anthropic-beta"] == "token-efficient-tools-2025-02-19"


def test_bearer_auth_works_too(two_dialect_gateway: Gateway) -> None:
    r = httpx.post(f"{two_dialect_gateway.url}/v1/messages", headers={"authorization": f"Bearer {MASTER_KEY}"},
                   json={"model": "claude-x", "max_tokens": 8, "messages": HI})
    assert r.status_code == 200 and r.json()["type"] == "message"


# ---- translated: an OpenAI-compatible provider ----

def test_translated_message(claude: anthropic.Anthropic, upstream: str) -> None:
    message = claude.messages.create(model="gpt-4o-mini", max_tokens=64, system="be brief", messages=HI,
                                     stop_sequences=["END"], metadata={"user_id": "u-1"})
    assert message.content[0].text.startswith("Hello from the mock upstream.")
    assert message.stop_reason == "end_turn" and message.usage.input_tokens == 11
    assert message.usage.output_tokens == 24
    last = seen(upstream)
    assert last["last_path"] == "/v1/chat/completions" and last["last_auth"] == f"Bearer {UPSTREAM_KEY}"
    assert json.loads(last["last_body"]) == {
        "model": "gpt-4o-mini", "max_tokens": 64, "stop": ["END"], "user": "u-1",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]}


def test_translated_stream(claude: anthropic.Anthropic, upstream: str) -> None:
    with claude.messages.stream(model="gpt-4o-mini", max_tokens=64, messages=HI,
                                extra_headers={"x-mock-chunks": "3"}) as stream:
        assert "".join(stream.text_stream) == "tok0 tok1 tok2 "
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (11, 3)
    assert json.loads(seen(upstream)["last_body"])["stream_options"] == {"include_usage": True}


def test_translated_tool_use_then_result(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model="gpt-4o-mini", max_tokens=64, messages=HI, tools=[WEATHER],
                                     tool_choice={"type": "any"})
    call = message.content[0]
    assert message.stop_reason == "tool_use" and call.type == "tool_use" and call.input == {"city": "mock"}
    with claude.messages.stream(model="gpt-4o-mini", max_tokens=64, messages=HI, tools=[WEATHER]) as stream:
        streamed = stream.get_final_message()
    assert streamed.stop_reason == "tool_use" and streamed.content[0].input == {"city": "mock"}
    follow_up = [*HI, {"role": "assistant", "content": [c.model_dump() for c in message.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}]}]
    answer = claude.messages.create(model="gpt-4o-mini", max_tokens=64, messages=follow_up, tools=[WEATHER])
    assert answer.stop_reason == "end_turn" and answer.content[0].text


def test_translated_count_tokens_uses_tiktoken(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model="gpt-4o-mini", system="be brief", messages=HI, tools=[WEATHER])
    from llmgate.translate.messages_to_chat import convert_tools

    expected = count_chat_prompt_tokens(convert_messages("be brief", HI), "gpt-4o-mini", convert_tools([WEATHER]))
    assert counted.input_tokens == expected > 11


# ---- errors, in Anthropic's format ----

def test_upstream_errors_translated(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as info:
        claude.messages.create(model="gpt-4o-mini", max_tokens=8, messages=HI, extra_headers={"x-mock-status": "429"})
    assert info.value.body == {"type": "error", "error": {"type": "rate_limit_error", "message": "mock error 429"}}
    with pytest.raises(anthropic.InternalServerError) as streamed, claude.messages.stream(
            model="gpt-4o-mini", max_tokens=8, messages=HI, extra_headers={"x-mock-status": "500"}) as stream:
        stream.get_final_message()
    assert streamed.value.status_code == 500 and streamed.value.body["error"]["type"] == "api_error"


def test_native_upstream_error_passes_through(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        claude.messages.create(model="claude-x", max_tokens=8, messages=HI, extra_headers={"x-mock-status": "529"})
    assert info.value.status_code == 529 and info.value.body["error"]["type"] == "overloaded_error"


@pytest.mark.parametrize(("method", "headers", "content", "status", "kind", "says"), [
    ("POST", {"x-api-key": "wrong"}, b'{"model":"claude-x"}', 401, "authentication_error", "Incorrect API key"),
    ("POST", {}, b'{"model":"claude-x"}', 401, "authentication_error", "didn't provide an API key"),
    ("GET", {"x-api-key": MASTER_KEY}, b"", 405, "invalid_request_error", "Method GET"),
    ("POST", {"x-api-key": MASTER_KEY}, b"{not json", 400, "invalid_request_error", "could not parse"),
    ("POST", {"x-api-key": MASTER_KEY}, b'{"max_tokens":5}', 400, "invalid_request_error", "model parameter"),
    ("POST", {"x-api-key": MASTER_KEY}, json.dumps({"model": "gpt-4o-mini", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "document", "source": {}}]}]}).encode(), 400,
     "invalid_request_error", "messages[0].content[0]"),
    ("POST", {"x-api-key": MASTER_KEY}, b'{"model":"claude-dead","max_tokens":5,"messages":[]}', 502, "api_error",
     "Could not reach"),
])
def test_gateway_errors_are_anthropic_shaped(two_dialect_gateway: Gateway, method: str, headers: dict,
                                             content: bytes, status: int, kind: str, says: str) -> None:
    r = httpx.request(method, f"{two_dialect_gateway.url}/v1/messages", headers=headers, content=content, timeout=10)
    assert r.status_code == status
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == kind and says in body["error"]["message"]
    assert r.headers["x-request-id"]
