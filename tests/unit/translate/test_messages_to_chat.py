"""Anthropic requests → OpenAI chat requests: the cases the round-trip property does not cover."""

from __future__ import annotations

import pytest

from llmgate.translate.chat_to_messages import TranslationError
from llmgate.translate.messages_to_chat import anthropic_message, openai_request

USER = {"role": "user", "content": "hi"}


def test_mixed_user_turn_puts_tool_results_first_and_drops_anthropic_only_fields() -> None:
    out = openai_request({"model": "m", "max_tokens": 10, "top_k": 5, "thinking": {"type": "enabled"},
                          "system": [{"type": "text", "text": "s", "cache_control": {"type": "ephemeral"}}],
                          "messages": [{"role": "user", "content": [
                              {"type": "text", "text": "and"},
                              {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "r"}],
                               "is_error": True}]}]})
    assert out == {"model": "m", "max_tokens": 10,
                   "messages": [{"role": "system", "content": [{"type": "text", "text": "s"}]},
                                {"role": "tool", "tool_call_id": "t1", "content": [{"type": "text", "text": "r"}]},
                                {"role": "user", "content": [{"type": "text", "text": "and"}]}]}


@pytest.mark.parametrize(("change", "param"), [
    ({"max_tokens": None}, "max_tokens"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]},
     "messages[0].content[0].source"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "tool"}}, "tool_choice"),
    ({"system": 5}, "system"),
    ({"stop_sequences": "x"}, "stop_sequences"),
])
def test_untranslatable_requests_name_the_field(change: dict, param: str) -> None:
    with pytest.raises(TranslationError) as info:
        openai_request({"model": "m", "max_tokens": 10, "messages": [USER], **change})
    assert info.value.param == param


def test_response_mapping() -> None:
    completion = {"id": "chatcmpl-1", "model": "gpt-x", "choices": [{"index": 0, "finish_reason": "content_filter",
                  "message": {"role": "assistant", "content": "", "tool_calls": [
                      {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{bad"}}]}}],
                  "usage": {"prompt_tokens": 30, "completion_tokens": 4,
                            "prompt_tokens_details": {"cached_tokens": 20}}}
    out = anthropic_message(completion)
    assert out["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {"arguments": "{bad"}}]
    assert out["stop_reason"] == "refusal"
    assert out["usage"] == {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 20}
    with pytest.raises(TranslationError):
        anthropic_message({"error": {"message": "x"}})
