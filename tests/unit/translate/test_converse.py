"""OpenAI chat → Bedrock Converse requests, Converse responses → chat.completion, Bedrock errors → OpenAI's shape:
examples, and properties over every request both can express."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmgate.translate.chat_to_messages import TranslationError, anthropic_request
from llmgate.translate.converse import chat_completion, converse_request, openai_error_from_bedrock, openai_usage
from tests.unit.translate.strategies import arguments, ident, name, openai_requests, text

Json = dict[str, Any]
_MEDIA = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp"}


def _anthropic_block(block: Json) -> Json:
    """The inverse of the translation's block mapping (Converse → Anthropic), for the round-trip property."""
    if "text" in block:
        return {"type": "text", "text": block["text"]}
    if "image" in block:
        image = block["image"]
        return {"type": "image", "source": {"type": "base64", "media_type": _MEDIA[image["format"]],
                                            "data": image["source"]["bytes"]}}
    if "toolUse" in block:
        use = block["toolUse"]
        return {"type": "tool_use", "id": use["toolUseId"], "name": use["name"], "input": use["input"]}
    result = block["toolResult"]
    return {"type": "tool_result", "tool_use_id": result["toolUseId"],
            "content": [{"type": "text", "text": c["text"]} for c in result["content"]]}


def _normalized(request: Json) -> Json:
    """An Anthropic request with string contents as block lists (Converse has only blocks) and without what
    Converse cannot carry (model, metadata, stream, parallel-call and "none" tool choices)."""
    out = {k: v for k, v in request.items() if k not in ("model", "metadata", "stream")}
    for message in out["messages"]:
        if isinstance(message["content"], str):
            message["content"] = [{"type": "text", "text": message["content"]}]
        for block in message["content"]:
            if block["type"] == "tool_result" and isinstance(block["content"], str):
                block["content"] = [{"type": "text", "text": block["content"]}]
    choice = out.pop("tool_choice", None)
    if choice is not None and choice["type"] != "none":
        out["tool_choice"] = {k: v for k, v in choice.items() if k != "disable_parallel_tool_use"}
    return out


def _anthropic_from_converse(converse: Json) -> Json:
    out: Json = {"messages": [{"role": m["role"], "content": [_anthropic_block(b) for b in m["content"]]}
                              for m in converse["messages"]]}
    if "system" in converse:
        texts = [s["text"] for s in converse["system"]]
        out["system"] = texts[0] if len(texts) == 1 else [{"type": "text", "text": t} for t in texts]
    inference = converse.get("inferenceConfig", {})
    for theirs, ours in (("maxTokens", "max_tokens"), ("temperature", "temperature"), ("topP", "top_p"),
                         ("stopSequences", "stop_sequences")):
        if theirs in inference:
            out[ours] = inference[theirs]
    if "toolConfig" in converse:
        out["tools"] = [{"name": t["toolSpec"]["name"], **({"description": t["toolSpec"]["description"]}
                                                          if "description" in t["toolSpec"] else {}),
                         "input_schema": t["toolSpec"]["inputSchema"]["json"]} for t in converse["toolConfig"]["tools"]]
        choice = converse["toolConfig"].get("toolChoice")
        if choice is not None:
            kind = next(iter(choice))
            out["tool_choice"] = {"type": kind, **choice[kind]}
    return out


def _has_image_url(request: Json) -> bool:
    return any(isinstance(m.get("content"), list) and any(
        p.get("type") == "image_url" and p["image_url"]["url"].startswith("https:") for p in m["content"])
        for m in request["messages"])


@given(openai_requests())
def test_converse_request_carries_everything_converse_can_express(request: Json) -> None:
    if _has_image_url(request):
        with pytest.raises(TranslationError, match="Bedrock takes no image URLs"):
            converse_request(request)
        return
    converse = converse_request(request)
    assert set(converse) <= {"messages", "system", "inferenceConfig", "toolConfig"}  # the model is in the URL
    assert _anthropic_from_converse(converse) == _normalized(anthropic_request(request))


def test_converse_request_example() -> None:
    request = {"model": "m", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}]},
        {"role": "tool", "tool_call_id": "t1", "content": "sunny"}],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
        "tool_choice": "required", "max_tokens": 100, "temperature": 0.3, "top_p": 0.9, "stop": "END",
        "stream": True, "stream_options": {"include_usage": True}}
    assert converse_request(request) == {
        "messages": [{"role": "user", "content": [{"text": "weather in Paris?"}]},
                     {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "weather",
                                                                    "input": {"city": "Paris"}}}]},
                     {"role": "user", "content": [{"toolResult": {"toolUseId": "t1",
                                                                  "content": [{"text": "sunny"}]}}]}],
        "system": [{"text": "be brief"}],
        "inferenceConfig": {"maxTokens": 100, "temperature": 0.3, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}],
                       "toolChoice": {"any": {}}}}


def test_max_tokens_is_left_to_the_model_when_not_given() -> None:
    assert "inferenceConfig" not in converse_request({"model": "m", "messages": [{"role": "user", "content": "x"}]})


@pytest.mark.parametrize(("field", "value"), [("n", 2), ("logprobs", True),
                                              ("response_format", {"type": "json_object"})])
def test_what_converse_cannot_do_is_a_400(field: str, value: object) -> None:
    with pytest.raises(TranslationError) as caught:
        converse_request({"model": "m", "messages": [{"role": "user", "content": "x"}], field: value})
    assert caught.value.param == field


converse_blocks = st.lists(st.one_of(
    text.map(lambda t: {"text": t}),
    st.tuples(ident, name, arguments).map(lambda t: {"toolUse": {"toolUseId": t[0], "name": t[1], "input": t[2]}}),
), max_size=4)
stop_reasons = st.sampled_from(["end_turn", "tool_use", "max_tokens", "stop_sequence", "guardrail_intervened",
                                "content_filtered"])
usages = st.fixed_dictionaries({"inputTokens": st.integers(0, 10**6), "outputTokens": st.integers(0, 10**6)},
                               optional={"cacheReadInputTokens": st.integers(0, 10**5),
                                         "cacheWriteInputTokens": st.integers(0, 10**5)})


@given(converse_blocks, stop_reasons, usages, st.integers(0, 2**31))
def test_chat_completion_of_a_converse_response(blocks: list[Json], stop: str, usage: Json, created: int) -> None:
    response = {"output": {"message": {"role": "assistant", "content": blocks}}, "stopReason": stop,
                "usage": {**usage, "totalTokens": 1}, "metrics": {"latencyMs": 3}}
    completion = chat_completion(response, "anthropic.claude", created)
    message = completion["choices"][0]["message"]
    texts = [b["text"] for b in blocks if "text" in b]
    uses = [b["toolUse"] for b in blocks if "toolUse" in b]
    assert message["content"] == ("".join(texts) if "".join(texts) or not uses else None)
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in message.get("tool_calls", [])] == [(u["toolUseId"], u["name"], u["input"]) for u in uses]
    assert completion["choices"][0]["finish_reason"] == {
        "end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
        "guardrail_intervened": "content_filter", "content_filtered": "content_filter"}[stop]
    cached = usage.get("cacheReadInputTokens", 0)
    prompt = usage["inputTokens"] + cached + usage.get("cacheWriteInputTokens", 0)
    assert completion["usage"]["prompt_tokens"] == prompt
    assert completion["usage"]["total_tokens"] == prompt + usage["outputTokens"]
    assert completion["usage"].get("prompt_tokens_details") == ({"cached_tokens": cached} if cached else None)
    assert (completion["model"], completion["created"], completion["object"]) == ("anthropic.claude", created,
                                                                                  "chat.completion")
    assert completion["id"].startswith("chatcmpl-")


def test_an_answer_that_is_not_converse_is_an_error() -> None:
    with pytest.raises(TranslationError):
        chat_completion({"choices": []}, "m", 0)


@pytest.mark.parametrize(("status", "body", "kind", "message"), [
    (429, b'{"message":"Too many requests, please wait before trying again."}', "rate_limit_error",
     "Too many requests, please wait before trying again."),
    (400, b'{"message":"Malformed input request"}', "invalid_request_error", "Malformed input request"),
    (403, b'{"Message":"User is not authorized"}', "permission_error", "User is not authorized"),
    (503, b"", "server_error", "The upstream answered 503."),
    (500, b"<html>oops</html>", "server_error", "<html>oops</html>"),
])
def test_bedrock_errors_in_openai_shape(status: int, body: bytes, kind: str, message: str) -> None:
    out_status, out = openai_error_from_bedrock(status, body)
    assert out_status == status
    assert json.loads(out) == {"error": {"message": message, "type": kind, "param": None, "code": None}}


def test_usage_without_counts_is_zero() -> None:
    assert openai_usage(None) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
