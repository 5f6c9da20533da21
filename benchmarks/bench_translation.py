"""Micro benchmarks of the translating path (pure functions, no I/O): what a request for a model of the other
dialect pays on top of the passthrough. Each is recorded as a ratio to `json.loads` of the same 2 KB body.

    request     decode the client's JSON, translate it, encode it for the upstream
    response    the same for a whole answer
    stream      a whole 20-token upstream stream (about 25 SSE events) translated into the client's dialect
"""

from __future__ import annotations

import json
from collections.abc import Callable

import msgspec

from llmgate.translate.chat_stream import AnthropicEventsFromOpenAI
from llmgate.translate.chat_to_messages import anthropic_request, chat_completion
from llmgate.translate.messages_stream import OpenAIChunksFromAnthropic
from llmgate.translate.messages_to_chat import anthropic_message, openai_request
from tests.upstream_double import anthropic_body, anthropic_frames, chat_body, chat_frames

_encode = msgspec.json.Encoder().encode
MESSAGE = {"role": "user", "content": "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 4}
CHAT = json.dumps({"model": "claude-x", "messages": [{"role": "system", "content": "Be brief."}] + [MESSAGE] * 7,
                   "temperature": 0.2, "max_tokens": 256}).encode()
MESSAGES = json.dumps({"model": "gpt-4o-mini", "system": "Be brief.", "messages": [MESSAGE] * 7,
                       "max_tokens": 256}).encode()
TOKENS = 20


def _stream_bytes(frames: tuple[bytes, tuple[bytes, ...], bytes]) -> list[bytes]:
    head, deltas, tail = frames
    return [head, *deltas, tail]


ANTHROPIC_STREAM = _stream_bytes(anthropic_frames("claude-x", TOKENS))
OPENAI_STREAM = _stream_bytes(chat_frames("gpt-4o-mini", TOKENS, True))


def test_json_loads_reference(record: Callable[..., None]) -> None:
    record(json.loads, CHAT, is_reference="json_loads_2KB")


def test_request_openai_to_anthropic(record: Callable[..., None]) -> None:
    def translate() -> bytes:
        return _encode(anthropic_request(msgspec.json.decode(CHAT)))

    assert b'"system":"Be brief."' in translate()
    record(translate, reference="json_loads_2KB")


def test_request_anthropic_to_openai(record: Callable[..., None]) -> None:
    def translate() -> bytes:
        return _encode(openai_request(msgspec.json.decode(MESSAGES)))

    assert b'"role":"system"' in translate()
    record(translate, reference="json_loads_2KB")


def test_response_both_ways(record: Callable[..., None]) -> None:
    anthropic, openai = anthropic_body("claude-x"), chat_body("gpt-4o-mini")

    def translate() -> tuple[bytes, bytes]:
        return (_encode(chat_completion(msgspec.json.decode(anthropic), 0)),
                _encode(anthropic_message(msgspec.json.decode(openai))))

    record(translate, reference="json_loads_2KB")


def test_stream_anthropic_to_openai(record: Callable[..., None]) -> None:
    def translate() -> bytes:
        translator = OpenAIChunksFromAnthropic("claude-x", 0, include_usage=True)
        return b"".join(translator.feed(chunk) for chunk in ANTHROPIC_STREAM) + translator.close()

    assert translate().endswith(b"data: [DONE]\n\n")
    record(translate, reference="json_loads_2KB")


def test_stream_openai_to_anthropic(record: Callable[..., None]) -> None:
    def translate() -> bytes:
        translator = AnthropicEventsFromOpenAI("gpt-4o-mini")
        return b"".join(translator.feed(chunk) for chunk in OPENAI_STREAM) + translator.close()

    assert translate().endswith(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    record(translate, reference="json_loads_2KB")
