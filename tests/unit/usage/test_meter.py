"""Token usage read from whole bodies and from the tail of SSE streams."""

from llmgate.usage.meter import UsageMeter, usage_tokens


def test_whole_bodies() -> None:
    assert usage_tokens(b'{"id":"x","usage":{"prompt_tokens":11,"completion_tokens":24,"total_tokens":35}}') == 35
    assert usage_tokens(b'{"usage":{"input_tokens":3,"output_tokens":4}}') == 7
    assert usage_tokens(b'{"id":"x"}') == 0
    assert usage_tokens(b"not json") == 0
    assert usage_tokens(b'{"usage": "weird"}') == 0


def test_stream_tail_split_across_chunks() -> None:
    meter = UsageMeter()
    frames = [b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n' for _ in range(500)]
    frames.append(b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion')
    frames.append(b'_tokens":2,"total_tokens":3}}\n\ndata: [DONE]\n\n')
    for frame in frames:
        meter.feed(frame)
    assert meter.tokens() == 3


def test_stream_without_usage() -> None:
    meter = UsageMeter()
    meter.feed(b'data: {"choices":[]}\n\ndata: [DONE]\n\n')
    assert meter.tokens() == 0
