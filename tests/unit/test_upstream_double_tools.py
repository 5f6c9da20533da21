"""The double's tool calls (both dialects) and its stricter Anthropic checks, over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.unit.test_upstream_double import ANTHROPIC, CLAUDE, sse_data, sse_events
from tests.upstream_double import run_double

WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                            "required": ["city"]}}
FUNCTION = {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER["input_schema"]}}


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with run_double() as base, httpx.Client(base_url=base, timeout=10) as c:
        yield c


def test_anthropic_tool_use_message(client: httpx.Client) -> None:
    body = client.post("/v1/messages", headers=ANTHROPIC, json={**CLAUDE, "tools": [WEATHER]}).json()
    assert body["stop_reason"] == "tool_use"
    assert [b["type"] for b in body["content"]] == ["text", "tool_use"]
    assert body["content"][1]["name"] == "get_weather" and body["content"][1]["input"] == {"city": "mock", "days": 1}


def test_anthropic_tool_use_stream(client: httpx.Client) -> None:
    r = client.post("/v1/messages", headers=ANTHROPIC, json={**CLAUDE, "tools": [WEATHER], "stream": True})
    events = sse_events(r.text)
    names = [e for e, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"] and names[-2:] == ["message_delta",
                                                                                           "message_stop"]
    starts = [p for e, p in events if e == "content_block_start"]
    assert [(s["index"], s["content_block"]["type"]) for s in starts] == [(0, "text"), (1, "tool_use")]
    pieces = [p["delta"]["partial_json"] for e, p in events
              if e == "content_block_delta" and p["delta"]["type"] == "input_json_delta"]
    assert pieces[0] == "" and len(pieces) > 2 and json.loads("".join(pieces)) == {"city": "mock", "days": 1}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_anthropic_tool_result_turn_gets_text(client: httpx.Client) -> None:
    messages = [{"role": "user", "content": "weather?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                   "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}]
    body = client.post("/v1/messages", headers=ANTHROPIC,
                       json={**CLAUDE, "tools": [WEATHER], "messages": messages}).json()
    assert body["stop_reason"] == "end_turn" and body["content"][0]["type"] == "text"
    body = client.post("/v1/messages", headers=ANTHROPIC,
                       json={**CLAUDE, "tools": [WEATHER], "tool_choice": {"type": "none"}}).json()
    assert body["stop_reason"] == "end_turn"


@pytest.mark.parametrize(("change", "message"), [
    ({"system": [{"type": "image"}]}, "system:"),
    ({"temperature": 1.5}, "temperature:"),
    ({"tools": [{"name": "x"}]}, "tools:"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}]},
     "messages.0.content.0: unexpected `tool_use_id`"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     "messages.0.content.0: Input tag 'image_url'"),
    ({"messages": [{"role": "user", "content": None}]}, "messages.0.content:"),
])
def test_anthropic_stricter_validation(client: httpx.Client, change: dict, message: str) -> None:
    r = client.post("/v1/messages", headers=ANTHROPIC, json={**CLAUDE, **change})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith(message)


def test_anthropic_count_tokens_validates(client: httpx.Client) -> None:
    no_max = {"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/v1/messages/count_tokens", headers=ANTHROPIC, json=no_max).json() == {"input_tokens": 11}
    r = client.post("/v1/messages/count_tokens", headers={"anthropic-version": "2023-06-01"}, json=no_max)
    assert r.status_code == 400 and r.json()["type"] == "error"


def test_openai_tool_calls(client: httpx.Client) -> None:
    chat = {"model": "gpt-x", "messages": [{"role": "user", "content": "weather?"}], "tools": [FUNCTION]}
    body = client.post("/v1/chat/completions", json=chat).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and json.loads(call["function"]["arguments"])["city"] == "mock"
    r = client.post("/v1/chat/completions", json={**chat, "stream": True, "stream_options": {"include_usage": True}})
    chunks = [json.loads(d) for d in sse_data(r.text)[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["tool_calls"][0]["id"] == "call_mock"
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas if d.get("tool_calls"))
    assert json.loads(arguments) == {"city": "mock", "days": 1}
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls" and chunks[-1]["usage"]["total_tokens"] == 20
    after = chat["messages"] + [{"role": "assistant", "tool_calls": [call]},
                                {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}]
    assert client.post("/v1/chat/completions", json={**chat, "messages": after}).json()["choices"][0][
        "finish_reason"] == "stop"


def test_x_mock_status_on_messages_paths_is_anthropic_shaped(client: httpx.Client) -> None:
    r = client.post("/v1/messages", headers={**ANTHROPIC, "x-mock-status": "529"}, json=CLAUDE)
    assert r.status_code == 529
    assert r.json()["type"] == "error"
    assert r.json()["error"] == {"type": "overloaded_error", "message": "mock error 529"}
    r = client.post("/v1/messages/count_tokens", headers={**ANTHROPIC, "x-mock-status": "429"}, json=CLAUDE)
    assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
