"""Anthropic's stream into OpenAI's chunks, at its edges: errors mid-stream, truncated streams, usage on request
only, thinking blocks."""

from __future__ import annotations

import json

from llmgate.translate.messages_stream import DONE, OpenAIChunksFromAnthropic


def _data(sse: bytes) -> list[str]:
    return [line[6:] for line in sse.decode().split("\n") if line.startswith("data: ")]


def test_anthropic_error_event_becomes_openai_error_and_ends() -> None:
    translator = OpenAIChunksFromAnthropic("m", 0, include_usage=False)
    out = translator.feed(b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1"}}\n\n'
                          b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
                          b'"message":"Overloaded"}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n')
    data = _data(out)
    assert json.loads(data[-1]) == {"error": {"message": "Overloaded", "type": "overloaded_error", "param": None,
                                              "code": None}}
    assert translator.finished and translator.close() == b"" and not out.endswith(DONE)


def test_truncated_anthropic_stream_ends_with_an_error() -> None:
    translator = OpenAIChunksFromAnthropic("m", 0, include_usage=True)
    translator.feed(b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1"}}\n\n')
    assert "ended before message_stop" in json.loads(_data(translator.close())[-1])["error"]["message"]


def test_usage_chunk_only_when_asked() -> None:
    stream = (b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","usage":{"input_tokens":3}}}'
              b'\n\nevent: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
              b'"usage":{"output_tokens":2}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n')
    without = _data(OpenAIChunksFromAnthropic("m", 0, include_usage=False).feed(stream))
    assert without[-1] == "[DONE]" and all("usage" not in d for d in without[:-1])
    usage = json.loads(_data(OpenAIChunksFromAnthropic("m", 0, include_usage=True).feed(stream))[-2])
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 2,
                                                         "total_tokens": 5}


def test_thinking_blocks_are_skipped_and_tool_indices_stay_dense() -> None:
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 4}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "f",
                                                                      "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]
    sse = b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), json.dumps(e).encode()) for e in events)
    chunks = [json.loads(d) for d in _data(OpenAIChunksFromAnthropic("m", 0, include_usage=False).feed(sse))[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [{"role": "assistant", "content": ""},
                      {"tool_calls": [{"index": 0, "id": "t1", "type": "function",
                                       "function": {"name": "f", "arguments": ""}}]},
                      {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}, {}]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls" and chunks[0]["model"] == "claude-x"
