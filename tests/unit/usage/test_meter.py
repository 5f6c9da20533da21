"""Token usage read from whole bodies and from the tail of SSE streams."""

from llmgate.usage.meter import TokenUsage, UsageMeter, usage_tokens


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


def test_the_split_and_cached_tokens_of_each_shape() -> None:
    from llmgate.usage.meter import TokenUsage, body_usage

    chat = b'{"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,' \
           b'"prompt_tokens_details":{"cached_tokens":8}}}'
    assert body_usage(chat) == TokenUsage(10, 5, 15, 8)
    embeddings = b'{"data":[],"usage":{"prompt_tokens":40,"total_tokens":40}}'
    assert body_usage(embeddings) == TokenUsage(40, 0, 40, None)
    responses = b'{"usage":{"input_tokens":7,"output_tokens":3,"total_tokens":10,' \
                b'"input_tokens_details":{"cached_tokens":2}}}'
    assert body_usage(responses) == TokenUsage(7, 3, 10, 2)
    anthropic = b'{"usage":{"input_tokens":3,"cache_creation_input_tokens":1,"cache_read_input_tokens":6,' \
                b'"output_tokens":4}}'
    assert body_usage(anthropic) == TokenUsage(10, 4, 14, 6)
    assert body_usage(b'{"id":"x"}') is None


def test_responses_stream_reads_usage_inside_the_completed_response() -> None:
    meter = UsageMeter()
    meter.feed(b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"hi"}\n\n')
    meter.feed(b'event: response.completed\ndata: {"type":"response.completed","response":{"id":"resp_1",'
               b'"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}}\n\n')
    usage = meter.usage()
    assert usage is not None and (usage.prompt, usage.completion, usage.total) == (5, 2, 7)


def test_anthropic_stream_split() -> None:
    meter = UsageMeter()
    meter.feed(b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":9,'
               b'"cache_read_input_tokens":1,"output_tokens":1}}}\n\n')
    meter.feed(b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":12}}\n\n')
    usage = meter.usage()
    assert usage is not None and (usage.prompt, usage.completion, usage.total, usage.cached) == (10, 12, 22, 1)


def test_keep_all_keeps_the_whole_stream_for_estimates() -> None:
    kept, tail_only = UsageMeter(keep_all=True), UsageMeter()
    for i in range(3000):
        kept.feed(b"data: %d\n\n" % i)
        tail_only.feed(b"data: %d\n\n" % i)
    assert kept.body is not None and kept.body.startswith(b"data: 0\n\n") and kept.body.endswith(b"data: 2999\n\n")
    assert tail_only.body is None


def test_a_long_stream_is_trimmed_to_its_head_and_tail() -> None:
    meter = UsageMeter()
    for i in range(5000):
        meter.feed(b"data: %d\n\n" % i)
    kept = b"".join(meter._chunks)
    assert len(kept) <= 2 * 8192 and kept.endswith(b"data: 4999\n\n")
    assert meter._head is not None and meter._head.startswith(b"data: 0\n\n") and len(meter._head) == 8192


def test_a_reported_usage_lets_go_of_what_was_kept_for_an_estimate() -> None:
    from llmgate.usage.meter import TokenUsage

    for_estimate, for_raw_log = UsageMeter(keep_all=True), UsageMeter(keep_all=True, keeps_body=True)
    for meter in (for_estimate, for_raw_log):
        meter.feed(b'data: {"choices":[]}\n\n')
        meter.reported(TokenUsage(1, 2, 3))
        meter.feed(b"data: [DONE]\n\n")
        assert meter.tokens() == 3
    assert for_estimate.body is None
    assert for_raw_log.body == b'data: {"choices":[]}\n\ndata: [DONE]\n\n'


def test_bedrock_converse_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    meter = UsageMeter()
    meter.whole(b'{"output":{"message":{"role":"assistant","content":[{"text":"hi"}]}},"stopReason":"end_turn",'
                b'"usage":{"inputTokens":10,"outputTokens":3,"totalTokens":13,"cacheReadInputTokens":4,'
                b'"cacheWriteInputTokens":2}}')
    assert meter.usage() == TokenUsage(16, 3, 19, 4)
    assert usage_tokens(b'{"usage":{"inputTokens":7,"outputTokens":2,"totalTokens":9}}') == 9
