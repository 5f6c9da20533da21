"""Estimated usage: tiktoken over the request and the answer, for answers that carry no usage."""

from __future__ import annotations

import json

from llmgate.usage.counting import count_chat_prompt_tokens, count_text_tokens
from llmgate.usage.estimate import estimate_usage
from llmgate.usage.meter import TokenUsage
from tests import upstream_double as double
from tests import upstream_double_tools as tools

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello in French."}]
CHAT = json.dumps({"model": MODEL, "messages": MESSAGES}).encode()


def frames(parts: tuple[bytes, tuple[bytes, ...], bytes]) -> bytes:
    head, deltas, tail = parts
    return head + b"".join(deltas) + tail


def test_chat_whole_answer() -> None:
    usage = estimate_usage("/v1/chat/completions", MODEL, CHAT, double.chat_body(MODEL, usage=False))
    prompt = count_chat_prompt_tokens(MESSAGES, MODEL)
    completion = count_text_tokens(double.TEXT * 4, MODEL)
    assert usage == TokenUsage(prompt, completion, prompt + completion)


def test_chat_stream_concatenates_the_deltas() -> None:
    body = frames(double.chat_frames(MODEL, 5, False))
    usage = estimate_usage("/v1/chat/completions", MODEL, CHAT, body)
    assert usage is not None
    assert usage.completion == count_text_tokens("tok0 tok1 tok2 tok3 tok4 ", MODEL)


def test_chat_stream_tool_call_arguments_count() -> None:
    offered = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    name, args = tools.openai_tool(offered, "required", MESSAGES) or ("", {})
    body = frames(tools.openai_tool_frames(MODEL, name, args, False))
    request = json.dumps({"model": MODEL, "messages": MESSAGES, "tools": offered}).encode()
    usage = estimate_usage("/v1/chat/completions", MODEL, request, body)
    assert usage is not None
    assert usage.prompt == count_chat_prompt_tokens(MESSAGES, MODEL, offered)
    assert usage.completion == count_text_tokens(name + json.dumps(args, separators=(",", ":")), MODEL)


def test_completions_prompt_list_and_text() -> None:
    request = json.dumps({"model": MODEL, "prompt": ["one two", "three"]}).encode()
    usage = estimate_usage("/v1/completions", MODEL, request, double.completion_body(MODEL, usage=False))
    assert usage is not None
    assert usage.prompt == count_text_tokens("one two", MODEL) + count_text_tokens("three", MODEL)
    assert usage.completion == count_text_tokens(double.TEXT * 4, MODEL)


def test_embeddings_count_every_input_once_and_no_completion() -> None:
    inputs = [f"input number {i}" for i in range(10)]
    request = json.dumps({"model": "text-embedding-3-small", "input": inputs}).encode()
    body = double.embeddings_body("text-embedding-3-small", 10, False, False)
    usage = estimate_usage("/v1/embeddings", None, request, body)
    expected = sum(count_text_tokens(text, "text-embedding-3-small") for text in inputs)
    assert usage == TokenUsage(expected, 0, expected)
    tokens = json.dumps({"model": "m", "input": [[1, 2, 3], [4, 5]]}).encode()
    assert estimate_usage("/v1/embeddings", "m", tokens, None) == TokenUsage(5, 0, 5)


def test_anthropic_stream() -> None:
    request = json.dumps({"model": "claude-x", "max_tokens": 10, "system": "Be brief.",
                          "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}).encode()
    usage = estimate_usage("/v1/messages", "claude-x", request, frames(double.anthropic_frames("claude-x", 3)))
    assert usage is not None
    assert usage.prompt == count_text_tokens("Be brief.Hi", "claude-x")
    assert usage.completion == count_text_tokens("tok0 tok1 tok2 ", "claude-x")


def test_unreadable_or_uncountable_requests() -> None:
    assert estimate_usage("/v1/chat/completions", MODEL, None, b"{}") is None
    assert estimate_usage("/v1/chat/completions", MODEL, b"not json", b"{}") is None
    assert estimate_usage("/v1/images/generations", MODEL, b'{"prompt": "a cat"}', b"{}") is None
    odd = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "audio", "x": 1}]}]})
    usage = estimate_usage("/v1/chat/completions", MODEL, odd.encode(), b"")
    assert usage == TokenUsage(0, 0, 0)  # a part tiktoken's recipe cannot read counts as nothing, no error
