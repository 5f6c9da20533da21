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


def test_anthropic_stream_counts_input_from_the_head_and_output_from_the_tail() -> None:
    meter = UsageMeter()
    meter.feed(b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","usage":'
               b'{"input_tokens":11,"cache_read_input_tokens":4,"output_tokens":1}}}\n\n')
    for _ in range(300):  # long enough that message_start has left the tail
        meter.feed(b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                   b'"delta":{"type":"text_delta","text":"tok "}}\n\n')
    meter.feed(b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
               b'"usage":{"output_tokens":300}}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n')
    assert meter.tokens() == 11 + 4 + 300


def test_anthropic_stream_with_an_unreadable_start() -> None:
    meter = UsageMeter()
    meter.feed(b'event: message_start\ndata: {"type":"message_start","message":"nope"}\n\n')
    meter.feed(b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":7}}\n\n')
    assert meter.tokens() == 7
