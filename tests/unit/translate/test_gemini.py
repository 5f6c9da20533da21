"""OpenAI ⇄ Gemini translation (translate/gemini_request.py, gemini_response.py, gemini_stream.py), pure: what the
Gemini double accepts, answers read back, streams that agree with whole answers however they are split, and
errors."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmgate.translate.chat_to_messages import TranslationError
from llmgate.translate.gemini_request import THOUGHT_MARK, encode_embedding, gemini_request
from llmgate.translate.gemini_response import chat_completion, finish_reason, openai_error_from_google, retry_delay_s
from llmgate.translate.gemini_stream import OpenAIChunksFromGemini
from tests.google_double import check_generate
from tests.unit.translate.strategies import arguments, name, openai_requests, text
from tests.unit.translate.streams import fold_openai_chunks, pieces
from tests.unit.translate.test_translation_properties import cuts, split, splits


@settings(max_examples=50)
@given(openai_requests())
def test_every_openai_request_becomes_a_body_gemini_accepts(request: dict[str, Any]) -> None:
    if not any(_says_something(m) for m in request["messages"]):  # Google rejects empty text: nothing to send
        with pytest.raises(TranslationError):
            gemini_request(request)
        return
    body = gemini_request(request)
    check_generate(body)  # raises what the API would answer 400 with
    system = [m["content"] for m in request["messages"] if m["role"] == "system"]
    assert [p["text"] for p in body.get("systemInstruction", {}).get("parts", [])] == system
    calls = [c for m in request["messages"] for c in m.get("tool_calls") or ()]
    sent = [p["functionCall"] for turn in body["contents"] for p in turn["parts"] if "functionCall" in p]
    assert [(c["name"], c["args"]) for c in sent] == [
        (c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls]
    assert body.get("generationConfig", {}).get("maxOutputTokens") == request["max_tokens"]
    assert "model" not in body and "stream" not in body


def _says_something(message: dict[str, Any]) -> bool:
    """A user or assistant message with a text, an image or a tool call that is not empty."""
    if message["role"] not in ("user", "assistant"):
        return False
    content = message.get("content")
    parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
    return bool(message.get("tool_calls")) or any(p["type"] != "text" or p["text"] for p in parts)


@st.composite
def gemini_responses(draw: st.DrawFn) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"text": draw(text)}]
    calls = draw(st.lists(st.tuples(name, arguments), max_size=2))
    parts += [{"functionCall": {"name": n, "args": a}} for n, a in calls]
    prompt, completion = draw(st.integers(0, 10**5)), draw(st.integers(0, 10**5))
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "index": 0,
                            "finishReason": draw(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY"]))}],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": completion,
                              "totalTokenCount": prompt + completion},
            "modelVersion": "gemini-x", "responseId": draw(name)}


def gemini_sse(response: dict[str, Any], text_cuts: list[int]) -> bytes:
    """The response as Gemini streams it: its text in pieces, the calls and finishReason with the last."""
    candidate = response["candidates"][0]
    parts = candidate["content"]["parts"]
    texts = pieces(parts[0]["text"], text_cuts)
    events = []
    for i, piece in enumerate(texts):
        last = i == len(texts) - 1
        event_candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": piece},
                                                                                *(parts[1:] if last else [])]}}
        if last:
            event_candidate["finishReason"] = candidate["finishReason"]
        event = {"candidates": [event_candidate], "usageMetadata": response["usageMetadata"],
                 "modelVersion": response["modelVersion"], "responseId": response["responseId"]}
        events.append(b"data: " + json.dumps(event, ensure_ascii=False).encode() + b"\r\n\r\n")
    return b"".join(events)


def _comparable(completion: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion without what differs between two translations of one answer: the tool call ids."""
    message = completion["choices"][0]["message"]
    calls = [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in message.get("tool_calls") or ()]
    return {"content": message["content"], "calls": calls, "finish": completion["choices"][0]["finish_reason"],
            "usage": completion["usage"], "model": completion["model"]}


@settings(max_examples=50)
@given(gemini_responses(), cuts, splits)
def test_the_stream_matches_the_whole_answer_however_split(response: dict[str, Any], text_cuts: list[int],
                                                           points: list[int]) -> None:
    whole = chat_completion(response, "asked", 0)
    translator = OpenAIChunksFromGemini("asked", 0, include_usage=True)
    out = b"".join(translator.feed(chunk) for chunk in split(gemini_sse(response, text_cuts), points))
    folded = fold_openai_chunks(out + translator.close())
    assert _comparable(folded) == _comparable(whole)
    assert translator.usage is not None and translator.usage.total == whole["usage"]["total_tokens"]


@settings(max_examples=50)
@given(gemini_responses())
def test_function_calls_come_back_as_tool_calls_with_their_arguments(response: dict[str, Any]) -> None:
    completion = chat_completion(response, "m", 1)
    parts = response["candidates"][0]["content"]["parts"]
    calls = completion["choices"][0]["message"].get("tool_calls") or []
    assert [(c["function"]["name"], json.loads(c["function"]["arguments"])) for c in calls] == [
        (p["functionCall"]["name"], p["functionCall"]["args"]) for p in parts[1:]]
    assert len({c["id"] for c in calls}) == len(calls)
    if calls and response["candidates"][0]["finishReason"] == "STOP":
        assert completion["choices"][0]["finish_reason"] == "tool_calls"


def test_a_thought_signature_rides_in_the_call_id_and_goes_back() -> None:
    answer = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "c2ln"}]}, "finishReason": "STOP"}]}
    call = chat_completion(answer, "m", 0)["choices"][0]["message"]["tool_calls"][0]
    assert call["id"].endswith(THOUGHT_MARK + "c2ln")
    body = gemini_request({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [call]},
                                        {"role": "tool", "tool_call_id": call["id"], "content": "plain"}]})
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {"a": 1}},
                                             "thoughtSignature": "c2ln"}]
    assert body["contents"][2]["parts"] == [{"functionResponse": {"name": "f", "response": {"content": "plain"}}}]


@pytest.mark.parametrize(("request_", "param"), [
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "x"}], "logprobs": True}, "logprobs"),
    ({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}, "response_format"),
    ({"messages": [{"role": "user", "content": "x"}], "n": 0}, "n"),
])
def test_what_gemini_cannot_take_is_a_400_naming_the_field(request_: dict[str, Any], param: str) -> None:
    with pytest.raises(TranslationError) as error:
        gemini_request(request_)
    assert error.value.param == param


def test_finish_reasons_and_a_blocked_prompt() -> None:
    assert [finish_reason(r, False) for r in ("STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", None)] == \
        ["stop", "length", "content_filter", "content_filter", "stop", "stop"]
    assert finish_reason("STOP", True) == "tool_calls" and finish_reason("MAX_TOKENS", True) == "length"
    blocked = chat_completion({"promptFeedback": {"blockReason": "SAFETY"}}, "m", 0)
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    with pytest.raises(TranslationError):
        chat_completion({"candidates": []}, "m", 0)


def test_a_stream_cut_before_its_finish_ends_with_an_error_not_done() -> None:
    translator = OpenAIChunksFromGemini("m", 0, include_usage=False)
    out = translator.feed(b'data: {"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}\r\n\r\n')
    assert b'"content":"Hel"' in out
    end = translator.close()
    assert b"[DONE]" not in end and b'"error"' in end
    failed = OpenAIChunksFromGemini("m", 0, include_usage=False)
    assert b"RESOURCE_EXHAUSTED" in failed.feed(b'data: {"error":{"code":429,"message":"q","status":"RESOURCE_'
                                                b'EXHAUSTED"}}\n\n') and failed.close() == b""


def test_google_errors_in_openai_shape_with_the_retry_delay() -> None:
    body = json.dumps({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
                                 "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                                             {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                              "retryDelay": "12.5s"}]}}).encode()
    status, translated = openai_error_from_google(429, body)
    assert status == 429 and json.loads(translated) == {"error": {
        "message": "Quota exceeded", "type": "rate_limit_error", "param": None, "code": "RESOURCE_EXHAUSTED"}}
    assert retry_delay_s(body) == 12.5 and retry_delay_s(b"{}") is None and retry_delay_s(b"not json") is None
    assert json.loads(openai_error_from_google(503, b"upstream connect error")[1])["error"] == {
        "message": "upstream connect error", "type": "api_error", "param": None, "code": None}


@given(st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=16))
def test_base64_embeddings_are_little_endian_float32(values: list[float]) -> None:
    encoded = encode_embedding(values, "base64")
    assert isinstance(encoded, str)
    assert list(struct.unpack(f"<{len(values)}f", base64.b64decode(encoded))) == values
    assert encode_embedding(values, "float") == values
