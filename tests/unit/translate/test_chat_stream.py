"""OpenAI's stream into Anthropic's events, at its edges: an error chunk, a stream that never says [DONE]."""

from __future__ import annotations

from llmgate.translate.chat_stream import AnthropicEventsFromOpenAI


def _data(sse: bytes) -> list[str]:
    return [line[6:] for line in sse.decode().split("\n") if line.startswith("data: ")]


def test_openai_error_chunk_becomes_anthropic_error_event() -> None:
    translator = AnthropicEventsFromOpenAI("m")
    out = translator.feed(b'data: {"error":{"message":"upstream broke","type":"server_error"}}\n\n').decode()
    assert out.startswith("event: error\n") and "upstream broke" in out and translator.finished


def test_openai_stream_without_done_still_finishes_after_finish_reason() -> None:
    translator = AnthropicEventsFromOpenAI("m")
    translator.feed(b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"length"}]}\n\n')
    events = [line[7:] for line in translator.close().decode().split("\n") if line.startswith("event: ")]
    assert events == ["content_block_stop", "message_delta", "message_stop"]
    cut = AnthropicEventsFromOpenAI("m")
    cut.feed(b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n')
    assert cut.close().startswith(b"event: error\n")
    assert cut.fail("again") == b""
