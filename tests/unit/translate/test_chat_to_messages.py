"""OpenAI chat requests → Anthropic requests: the cases the round-trip property does not cover."""

from __future__ import annotations

import pytest

from llmgate.translate.chat_to_messages import (
    DEFAULT_MAX_TOKENS,
    TranslationError,
    anthropic_request,
    chat_completion,
)

USER = {"role": "user", "content": "hi"}


def test_defaults_and_field_mapping() -> None:
    out = anthropic_request({"model": "claude-x", "messages": [USER], "max_completion_tokens": 50, "max_tokens": 9,
                             "temperature": 1.7, "stop": "END", "seed": 1, "n": 1, "stream": False})
    assert out == {"model": "claude-x", "messages": [USER], "max_tokens": 50, "temperature": 1.0,
                   "stop_sequences": ["END"]}
    assert anthropic_request({"model": "m", "messages": [USER]})["max_tokens"] == DEFAULT_MAX_TOKENS


def test_system_and_developer_messages_are_hoisted_in_order() -> None:
    out = anthropic_request({"model": "m", "messages": [
        {"role": "system", "content": "a"}, USER, {"role": "developer", "content": [{"type": "text", "text": "b"}]}]})
    assert out["system"] == [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert out["messages"] == [USER]


def test_parallel_tool_calls_off_without_tool_choice() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    out = anthropic_request({"model": "m", "messages": [USER], "tools": tools, "parallel_tool_calls": False})
    assert out["tools"] == [{"name": "f", "input_schema": {"type": "object", "properties": {}}}]
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(("change", "param"), [
    ({"n": 2}, "n"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"logprobs": True}, "logprobs"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "function", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]},
     "messages[0].content[0]"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f",
                                                                                  "arguments": "{oops"}}]}]},
     "messages[0].tool_calls[0]"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "sometimes"}, "tool_choice"),
    ({"temperature": "hot"}, "temperature"),
    ({"stop": [1]}, "stop"),
])
def test_untranslatable_requests_name_the_field(change: dict, param: str) -> None:
    with pytest.raises(TranslationError) as info:
        anthropic_request({"model": "m", "messages": [USER], **change})
    assert info.value.param == param


def test_response_mapping() -> None:
    message = {"id": "msg_1", "model": "claude-x", "stop_reason": "max_tokens",
               "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "a"},
                           {"type": "text", "text": "b"}],
               "usage": {"input_tokens": 5, "output_tokens": 2, "cache_read_input_tokens": 10,
                         "cache_creation_input_tokens": 1}}
    out = chat_completion(message, 123)
    assert out["choices"][0]["message"]["content"] == "ab" and out["choices"][0]["finish_reason"] == "length"
    assert out["usage"] == {"prompt_tokens": 16, "completion_tokens": 2, "total_tokens": 18,
                            "prompt_tokens_details": {"cached_tokens": 10}}
    with pytest.raises(TranslationError):
        chat_completion({"type": "error"}, 0)
