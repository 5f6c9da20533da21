"""Providers of kind `gemini` through the app in process, with the official OpenAI and Anthropic SDKs, against
the Google double (tests/google_double.py): chat, streams, tools, JSON output, n, safety, embeddings, the
model list, errors, 429 cooldowns from RetryInfo, and usage with its cost in the usage API."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.google_double import KEY, TEXT, GoogleDouble, embedding
from tests.inprocess.access import TOKENS_ENV, manage, until
from tests.inprocess.gateway import Gateway
from tests.servers import MASTER_KEY

CONFIG = """
[[providers]]
name = "gemini"
kind = "gemini"
api_key = "env:GEMINI_API_KEY"
base_url = "http://gemini.test"
models = ["gemini-*"]

[prices."gemini-2.5-flash"]
input_per_mtok = 1000000
output_per_mtok = 2000000
"""
KEY2 = "AIza-test-gemini-key-111111111111"
ENV = {**TOKENS_ENV, "GEMINI_API_KEY": KEY, "LLMGATE_USAGE_FLUSH_S": "0.05"}
HI = [{"role": "user", "content": "hi there"}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def double() -> GoogleDouble:
    return GoogleDouble()


@pytest.fixture
def gw(double: GoogleDouble) -> Iterator[Gateway]:
    with Gateway(CONFIG, double, env=ENV) as gateway:
        yield gateway


@pytest.fixture
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key=MASTER_KEY, max_retries=0, http_client=gw.http)


def test_chat(client: openai.OpenAI, double: GoogleDouble) -> None:
    completion = client.chat.completions.create(
        model="gemini-2.5-flash", messages=[{"role": "system", "content": "be brief"}, *HI], temperature=0.2,
        top_p=0.9, max_tokens=100, stop=["END"], user="u-1", extra_headers={"x-trace": "t-1"})
    assert completion.object == "chat.completion" and completion.model == "gemini-2.5-flash"
    assert completion.choices[0].message.content == TEXT and completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens,
                                             completion.usage.total_tokens) == (2, 5, 7)
    path, headers, body = double.seen[-1]
    assert path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert headers["x-goog-api-key"] == KEY and headers["x-trace"] == "t-1" and "authorization" not in headers
    assert body == {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
                    "systemInstruction": {"parts": [{"text": "be brief"}]},
                    "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 100,
                                         "stopSequences": ["END"]}}


def test_stream_reassembles_the_text_with_usage(client: openai.OpenAI, double: GoogleDouble) -> None:
    stream = client.chat.completions.create(model="gemini-2.5-flash", messages=HI, stream=True,
                                            stream_options={"include_usage": True},
                                            extra_headers={"x-mock-chunks": "4"})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 7
    assert double.seen[-1][0] == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    plain = list(client.chat.completions.create(model="gemini-2.5-flash", messages=HI, stream=True))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason == "stop"


def test_stream_ends_with_done(gw: Gateway) -> None:
    answer = gw.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": HI, "stream": True})
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.text.endswith("data: [DONE]\n\n") and answer.text.count("[DONE]") == 1


def test_tool_call_round_trip(client: openai.OpenAI, double: GoogleDouble) -> None:
    asked = [{"role": "user", "content": "weather in Paris?"}]
    completion = client.chat.completions.create(model="gemini-2.5-flash", messages=asked, tools=[WEATHER],
                                                tool_choice="required")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "Let me check."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    sent = double.seen[-1][2]
    assert sent["tools"] == [{"functionDeclarations": [{"name": "get_weather", "description": "Weather in a city",
                                                        "parametersJsonSchema": WEATHER["function"]["parameters"]}]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}
    answered = client.chat.completions.create(model="gemini-2.5-flash", tools=[WEATHER], messages=[
        *asked, choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'}])
    assert answered.choices[0].message.content == 'The tools said: [{"temp_c": 21}]'
    turns = double.seen[-1][2]["contents"]
    # the function call went back with its thought signature, the result by its function's name
    assert turns[1] == {"role": "model", "parts": [{"text": "Let me check."}, {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnbmF0dXJl"}]}
    assert turns[2] == {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                                        "response": {"temp_c": 21}}}]}


def test_streamed_tool_call(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="gemini-2.5-flash", messages=HI, tools=[WEATHER],
                                                 stream=True))
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    assert len(calls) == 1 and calls[0].function is not None and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments or "") == {"city": "Paris"} and calls[0].index == 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_json_schema_n_images_and_length(client: openai.OpenAI, double: GoogleDouble) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    completion = client.chat.completions.create(
        model="gemini-2.5-flash", n=2, messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is it?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}],
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
    assert len(completion.choices) == 2
    assert json.loads(completion.choices[1].message.content or "") == {"answer": "yes", "schema_seen": True}
    body = double.seen[-1][2]
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    assert body["generationConfig"] == {"candidateCount": 2, "responseMimeType": "application/json",
                                        "responseJsonSchema": schema}
    short = client.chat.completions.create(model="gemini-2.5-flash", messages=HI, max_completion_tokens=2)
    assert short.choices[0].finish_reason == "length" and short.choices[0].message.content == "Hello from"


def test_safety_blocks(client: openai.OpenAI) -> None:
    blocked = client.chat.completions.create(model="gemini-2.5-flash",
                                             messages=[{"role": "user", "content": "BLOCKME"}])
    assert blocked.choices[0].finish_reason == "content_filter" and blocked.choices[0].message.content is None
    unsafe = client.chat.completions.create(model="gemini-2.5-flash", messages=[{"role": "user", "content": "UNSAFE"}])
    assert unsafe.choices[0].finish_reason == "content_filter"
    streamed = list(client.chat.completions.create(model="gemini-2.5-flash", stream=True,
                                                   messages=[{"role": "user", "content": "BLOCKME"}]))
    assert streamed[-1].choices[0].finish_reason == "content_filter"


def test_embeddings(client: openai.OpenAI, double: GoogleDouble) -> None:
    floats = client.embeddings.create(model="gemini-embedding-001", input=["a b", "c"], dimensions=4,
                                      encoding_format="float")
    assert [d.embedding for d in floats.data] == [embedding("a b", 4), embedding("c", 4)]
    path, _, body = double.seen[-1]
    assert path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert body["requests"][1] == {"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "c"}]},
                                   "outputDimensionality": 4}
    default = client.embeddings.create(model="gemini-embedding-001", input="a b")  # the SDK asks for base64
    assert default.data[0].embedding == pytest.approx(embedding("a b", 8), abs=1e-6)
    raw = client.embeddings.with_raw_response.create(model="gemini-embedding-001", input="a b",
                                                     encoding_format="base64")
    packed = base64.b64decode(json.loads(raw.text)["data"][0]["embedding"])
    assert list(struct.unpack("<8f", packed)) == pytest.approx(embedding("a b", 8), abs=1e-6)


def test_models_list(gw: Gateway) -> None:
    listed = [m["id"] for m in gw.get("/v1/models").json()["data"]]
    assert listed == ["gemini-2.5-flash", "gemini-embedding-001"]  # `aqa` does not match gemini-*
    assert gw.get("/v1/models/gemini-2.5-flash").json()["owned_by"] == "gemini"


def test_errors_in_openai_shape(client: openai.OpenAI, gw: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="gemini-2.5-flash", messages=HI, extra_headers={"x-mock-status": "400"})
    assert bad.value.code == "INVALID_ARGUMENT" and "told to answer 400" in bad.value.message
    with pytest.raises(openai.BadRequestError) as untranslatable:
        client.chat.completions.create(model="gemini-2.5-flash", messages=HI, logprobs=True)
    assert untranslatable.value.param == "logprobs"
    answer = gw.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": HI},
                     headers={"x-mock-status": "503"})
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "UNAVAILABLE"
    assert answer.headers["x-llmgate-attempts"] == "4"  # transient: retried on the same deployment
    assert gw.post("/v1/completions", json={"model": "gemini-2.5-flash", "prompt": "x"}).status_code == 404


def test_429_cools_the_key_for_the_retry_delay(gw: Gateway) -> None:
    first = gw.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": HI},
                    headers={"x-mock-status": "429", "x-mock-retry-delay": "42s"})
    assert first.status_code == 429 and first.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert first.json()["error"]["type"] == "rate_limit_error" and first.headers["retry-after"] == "42"
    key = gw.health("gemini")["keys"][0]
    assert key["state"] == "cooling_down" and key["cooling_down_for_s"] == 42
    gw.clock.advance(42)
    streamed = gw.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": HI, "stream": True},
                       headers={"x-mock-status": "429", "x-mock-retry-delay": "7s"})
    assert streamed.status_code == 429 and streamed.headers["retry-after"] == "7"
    assert gw.health("gemini")["keys"][0]["cooling_down_for_s"] == 7


def test_an_exhausted_key_rests_and_the_next_one_answers() -> None:
    double = GoogleDouble(keys=(KEY, KEY2))
    double.exhausted.add(KEY)
    config = CONFIG.replace('api_key = "env:GEMINI_API_KEY"', f'api_keys = ["env:GEMINI_API_KEY", "{KEY2}"]')
    with Gateway(config, double, env=ENV) as gw:
        answer = gw.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": HI})
        assert answer.status_code == 200 and answer.headers["x-llmgate-attempts"] == "2"
        assert gw.health("gemini")["keys"][0]["cooling_down_for_s"] == 37
        for _ in range(2):
            gw.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": HI})
        assert [h["x-goog-api-key"] for _, h, _ in double.seen] == [KEY, KEY2, KEY2, KEY2]  # KEY rests
        gw.clock.advance(37)
        double.exhausted.clear()
        gw.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": HI})
        assert double.seen[-1][1]["x-goog-api-key"] == KEY


def test_usage_and_cost_in_the_usage_api(client: openai.OpenAI, gw: Gateway) -> None:
    client.chat.completions.create(model="gemini-2.5-flash", messages=HI)
    list(client.chat.completions.create(model="gemini-2.5-flash", messages=HI, stream=True))
    usage = until(gw, lambda: (u := manage(gw, "GET", "/usage?group_by=model").json()["data"]) and
                  u[0]["requests"] == 2 and u)
    assert usage[0]["group"] == "gemini-2.5-flash"
    assert (usage[0]["prompt_tokens"], usage[0]["completion_tokens"]) == (4, 10)
    assert usage[0]["estimated_requests"] == 0
    assert usage[0]["cost"] == pytest.approx(4 * 1 + 10 * 2)


def test_anthropic_sdk_on_messages(gw: Gateway, double: GoogleDouble) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, http_client=gw.http2)
    message = client.messages.create(model="gemini-2.5-flash", max_tokens=50, system="be brief",
                                     messages=[{"role": "user", "content": "hi there"}])
    assert message.content[0].type == "text" and message.content[0].text == TEXT
    assert message.stop_reason == "end_turn" and (message.usage.input_tokens, message.usage.output_tokens) == (2, 5)
    assert double.seen[-1][2]["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    with client.messages.stream(model="gemini-2.5-flash", max_tokens=50,
                                messages=[{"role": "user", "content": "hi there"}]) as stream:
        assert "".join(stream.text_stream) == TEXT
        assert stream.get_final_message().usage.output_tokens == 5
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="gemini-2.5-flash", max_tokens=5, messages=[{"role": "user", "content": "x"}],
                               extra_headers={"x-mock-status": "429"})


def test_anthropic_count_tokens_asks_gemini(gw: Gateway, double: GoogleDouble) -> None:
    client = anthropic.Anthropic(base_url=gw.url, api_key=MASTER_KEY, max_retries=0, http_client=gw.http2)
    counted = client.messages.count_tokens(model="gemini-2.5-flash", system="be brief",
                                           messages=[{"role": "user", "content": "hi there"}])
    assert counted.input_tokens == 2 + 2 + 3  # the double's count: words of the prompt and system, 3 a turn
    path, _, body = double.seen[-1]
    assert path == "/v1beta/models/gemini-2.5-flash:countTokens"
    assert body == {"generateContentRequest": {"model": "models/gemini-2.5-flash",
                                               "contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
                                               "systemInstruction": {"parts": [{"text": "be brief"}]}}}


def test_claude_on_vertex_errors_in_either_shape() -> None:
    from llmgate.pipeline.google import anthropic_error_from_vertex, openai_error_from_vertex

    anthropic_shaped = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    google_shaped = b'{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}'
    status, body = openai_error_from_vertex(529, anthropic_shaped)
    assert status == 503 and json.loads(body)["error"]["message"] == "Overloaded"
    status, body = openai_error_from_vertex(429, google_shaped)
    assert status == 429 and json.loads(body)["error"]["code"] == "RESOURCE_EXHAUSTED"
    assert anthropic_error_from_vertex(529, anthropic_shaped) == (529, anthropic_shaped)  # Anthropic's clients know it
    status, body = anthropic_error_from_vertex(429, google_shaped)
    assert status == 429 and json.loads(body) == {"type": "error", "error": {"type": "rate_limit_error",
                                                                              "message": "Quota exceeded"}}
