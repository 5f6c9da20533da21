"""The stream tap: the usage chunk the gateway asked for is metered and removed; everything else passes."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from llmgate.usage.meter import UsageMeter
from llmgate.usage.tap import StreamTap, ask_for_usage, without_usage_event

CHUNKS = [
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hel"}}],"usage":null}\n\n',
    b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"lo"}}],"usage":null}\n\n',
    b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":4,"completion_tokens":2,"total_tokens":6}}\n\n',
    b"data: [DONE]\n\n",
]
# What the client gets when it did not ask: no usage chunk, and no `"usage":null` on the others (as without).
WITHOUT_USAGE = CHUNKS[0].replace(b',"usage":null', b"") + CHUNKS[1].replace(b',"usage":null', b"") + CHUNKS[3]


def relay(tap: StreamTap, chunks: list[bytes]) -> bytes:
    return b"".join(tap.feed(chunk) for chunk in chunks) + tap.end()


def test_a_client_that_asked_gets_the_nulls_and_the_usage_chunk() -> None:
    tap = StreamTap(UsageMeter(), strip=False)
    assert relay(tap, CHUNKS) == b"".join(CHUNKS)


def test_not_stripping_passes_every_byte_and_meters() -> None:
    tap = StreamTap(UsageMeter())
    assert relay(tap, CHUNKS) == b"".join(CHUNKS)
    assert tap.meter.tokens() == 6


def test_stripping_removes_only_the_usage_chunk() -> None:
    tap = StreamTap(UsageMeter(), strip=True)
    assert relay(tap, CHUNKS) == WITHOUT_USAGE
    assert tap.meter.tokens() == 6


@pytest.mark.parametrize("size", [1, 7, 33, 100])
def test_stripping_works_whatever_the_network_chunking(size: int) -> None:
    whole = b"".join(CHUNKS)
    pieces = [whole[i:i + size] for i in range(0, len(whole), size)]
    tap = StreamTap(UsageMeter(), strip=True)
    assert relay(tap, pieces) == WITHOUT_USAGE
    assert tap.meter.tokens() == 6


def test_stripping_crlf_streams_and_spaced_json() -> None:
    chunks = [b'data: {"choices": [{"delta": {"content": "x"}}]}\r\n\r\n',
              b'data: {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}'
              b"\r\n\r\ndata: [DONE]\r\n\r\n"]
    tap = StreamTap(UsageMeter(), strip=True)
    assert relay(tap, chunks) == chunks[0] + b"data: [DONE]\r\n\r\n"


def test_a_chunk_with_choices_and_usage_is_kept() -> None:
    # Some providers put usage on the last content chunk: that chunk is content, so it stays.
    chunk = b'data: {"choices":[{"delta":{"content":"x"}}],"usage":{"total_tokens":3}}\n\n'
    tap = StreamTap(UsageMeter(), strip=True)
    assert relay(tap, [chunk, b"data: [DONE]\n\n"]) == chunk + b"data: [DONE]\n\n"


def test_an_unterminated_tail_is_sent_at_the_end() -> None:
    tap = StreamTap(UsageMeter(), strip=True)
    assert relay(tap, [CHUNKS[0], b"data: [DONE]"]) == CHUNKS[0].replace(b',"usage":null', b"") + b"data: [DONE]"


def test_ask_for_usage() -> None:
    asked = ask_for_usage(b'{"model":"m","stream":true,"messages":[]}')
    assert asked is not None
    assert msgspec.json.decode(asked) == {"model": "m", "stream": True, "messages": [],
                                          "stream_options": {"include_usage": True}}
    merged = ask_for_usage(b'{"model":"m","stream_options":{"include_usage":false,"x":1}}')
    assert merged is not None
    assert msgspec.json.decode(merged)["stream_options"] == {"include_usage": True, "x": 1}
    assert ask_for_usage(b'{"model":"m","stream_options":{"include_usage":true}}') is None
    assert ask_for_usage(b"[1]") is None


USAGE_EVENT = b'data: {"choices":[],"usage":{"total_tokens":3}}'
SPACED_USAGE_EVENT = b'data: {"choices": [], "usage": {"total_tokens": 3}}'
CONTENT_WITH_USAGE = b'data: {"choices":[{"delta":{}}],"usage":{"total_tokens":3}}'


@pytest.mark.parametrize("sep", [b"\n\n", b"\r\n\r\n"])
@pytest.mark.parametrize("order", list(itertools.product(
    [b'data: {"choices":[{"delta":{"content":"a"}}]}', USAGE_EVENT, SPACED_USAGE_EVENT, CONTENT_WITH_USAGE,
     b"data: [DONE]"], repeat=3)))
def test_the_usage_event_is_found_wherever_it_is(sep: bytes, order: tuple[bytes, ...]) -> None:
    events = sep.join(order) + sep
    usage_at = [i for i, event in enumerate(order) if event in (USAGE_EVENT, SPACED_USAGE_EVENT)]
    kept = [event for i, event in enumerate(order) if not usage_at or i != usage_at[-1]]
    assert without_usage_event(events, sep) == (b"".join(event + sep for event in kept),
                                                order[usage_at[-1]] + sep if usage_at else None)


@pytest.mark.parametrize("body", [
    b'{"model":"m","stream":true}',
    b'  \n{ "model": "m", "stream": true }',
    b"{}",
    b'{"model":"m","messages":[{"role":"user","content":"what is stream_options?"}]}',
    b'{"model":"m","messages":[{"role":"user","content":"caf\\u00e9"}]}',
])
def test_asking_for_usage_keeps_every_field(body: bytes) -> None:
    asked = ask_for_usage(body)
    assert asked is not None
    assert msgspec.json.decode(asked) == {**msgspec.json.decode(body), "stream_options": {"include_usage": True}}


def test_an_escaped_stream_options_key_is_seen() -> None:
    assert ask_for_usage(b'{"model":"m","stream\\u005foptions":{"include_usage":true}}') is None


def test_nulls_are_removed_only_from_a_stream_that_has_them() -> None:
    # The first read with a data event says whether this upstream writes `"usage":null` (OpenAI does in every
    # chunk once usage is asked for); a stream without it is not searched for it again.
    first = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    later = b'data: {"choices":[{"delta":{"content":"b"}}],"usage":null}\n\n'
    tap = StreamTap(UsageMeter(), strip=True)
    assert relay(tap, [first, later, b"data: [DONE]\n\n"]) == first + later + b"data: [DONE]\n\n"


def test_nothing_is_searched_once_the_usage_event_is_removed() -> None:
    tap = StreamTap(UsageMeter(), strip=True)
    late = b'data: {"choices":[],"usage":{"total_tokens":9}}\n\n'  # no upstream sends two; were one to, it passes
    assert relay(tap, [CHUNKS[2], late]) == late


def test_nulls_are_looked_for_in_the_first_read_with_data_after_comments() -> None:
    comment = b": PROCESSING\n\n"  # OpenRouter, for one, sends comments before the first event
    tap = StreamTap(UsageMeter(), strip=True)
    assert relay(tap, [comment, *CHUNKS]) == comment + WITHOUT_USAGE


def test_a_whole_stream_in_one_read_takes_the_last_events_path() -> None:
    # How a fast stream arrives: every event in one read, the usage event right before [DONE].
    for chunks, expected in ((CHUNKS, WITHOUT_USAGE),
                             ([c.replace(b',"usage":null', b"") for c in CHUNKS], WITHOUT_USAGE)):
        tap = StreamTap(UsageMeter(), strip=True)
        assert relay(tap, [b"".join(chunks)]) == expected
        assert tap.meter.usage() is not None and tap.meter.tokens() == 6


@pytest.mark.parametrize("tail", [
    b'data: {"choices":[],"usage":{"total_tokens":6}}\n\ndata: [DONE]\n\n',  # the usage event first: no event before
    b'data: {"choices":[{"delta":{}}],"usage":{"total_tokens":6}}\n\ndata: [DONE]\n\n',  # usage on a content chunk
    b'event: x\ndata: {"choices":[],"usage":{"total_tokens":6}}\n\ndata: [DONE]\n\n',  # a named event (removed)
])
def test_last_reads_of_other_shapes_go_the_general_way(tail: bytes) -> None:
    first = CHUNKS[0].replace(b',"usage":null', b"")
    tap = StreamTap(UsageMeter(), strip=True)
    out = relay(tap, [first + tail])
    assert out.endswith(b"data: [DONE]\n\n") and out.startswith(first)
    kept_usage = b'"choices":[{' in tail
    assert (b'"usage":{' in out) == kept_usage  # only a usage-only `data:` event is removed
    assert tap.meter.tokens() == 6


def test_ask_for_usage_given_the_routing_views_stream_options() -> None:
    from llmgate.schemas.openai import decode_routing_view

    body = b'{"model":"m","stream":true}'
    asked = ask_for_usage(body, decode_routing_view(body).stream_options)  # UNSET: prepended, no search
    assert asked == b'{"stream_options":{"include_usage":true},"model":"m","stream":true}'
    for body in (b'{"model":"m","stream_options":null}', b'{"model":"m","stream_options":{"include_usage":false}}',
                 b'{"model":"m","stream_opti\\u006fns":{"x":1}}'):  # present, even escaped: merged, never doubled
        asked = ask_for_usage(body, decode_routing_view(body).stream_options)
        assert asked is not None and msgspec.json.decode(asked)["stream_options"]["include_usage"] is True
        assert asked.count(b"stream_options") == 1
    body = b'{"model":"m","stream_options":{"include_usage":true}}'
    assert ask_for_usage(body, decode_routing_view(body).stream_options) is None


def test_the_raw_log_keeps_the_upstreams_bytes_of_a_stripped_last_read() -> None:
    whole = b"".join(CHUNKS)
    kept, let_go = UsageMeter(keep_all=True, keeps_body=True), UsageMeter(keep_all=True)
    for meter in (kept, let_go):
        assert relay(StreamTap(meter, strip=True), [whole]) == WITHOUT_USAGE
        assert meter.tokens() == 6
    assert kept.body == whole  # what the upstream sent, usage chunk included
    assert let_go.body is None


def test_a_dripped_event_goes_out_as_it_comes_once_it_has_choices() -> None:
    """An upstream writing an event a few bytes at a time: once the event shows choices (so it is not the usage
    chunk to remove), its bytes are not held until the event's end (but for what could begin a `"usage":null`)."""
    tap = StreamTap(UsageMeter(), strip=True)
    event = CHUNKS[0]
    sent = [tap.feed(event[i:i + 3]) for i in range(0, len(event), 3)]
    at = event.find(b'"choices":[{') + len(b'"choices":[{')
    assert b"".join(sent[:at // 3 - 1]) == b""  # before the choices: it might be the usage chunk
    assert b"".join(sent[:at // 3 + 2]).startswith(event[:at])  # after them: out at once
    assert sum(1 for part in sent if part) > 5
    rest = [tap.feed(chunk) for chunk in CHUNKS[1:]]
    assert b"".join(sent + rest) + tap.end() == WITHOUT_USAGE
    assert tap.meter.tokens() == 6


@pytest.mark.parametrize("size", [1, 2, 5, 7, 13, 64])
def test_any_drip_keeps_the_client_stream_the_same(size: int) -> None:
    whole = b"".join(CHUNKS)
    tap = StreamTap(UsageMeter(), strip=True)
    assert relay(tap, [whole[i:i + size] for i in range(0, len(whole), size)]) == WITHOUT_USAGE
    assert tap.meter.tokens() == 6


@pytest.mark.parametrize(("last", "error"), [
    (b'data: {"error":{"message":"overloaded","type":"server_error","code":"overloaded"}}\n\n', "overloaded"),
    (b'data: {"error":{"message":"boom","type":"server_error","code":null}}\n\n', "server_error"),
    (b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"x"}}\n\n',
     "overloaded_error"),
    (b'data: {"error":"not json\n\n', "upstream_error"),
    (b"data: [DONE]\n\n", None),
    (b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"error"}}]}\n\n', None),
])
def test_a_stream_that_ends_with_an_error_event_says_so(last: bytes, error: str | None) -> None:
    tap = StreamTap(UsageMeter())
    relay(tap, [CHUNKS[0], last[:10], last[10:]])
    assert tap.ended_with_error() == error
