"""The incremental SSE parser: line ends, comments, multi-line data, events split anywhere."""

from __future__ import annotations

from llmgate.translate.sse import Event, SSEParser


def test_events_comments_and_multiline_data() -> None:
    parser = SSEParser()
    stream = b": keep-alive\n\nevent: ping\ndata: {}\n\ndata: a\ndata:b\n\nid: 7\nretry: 10\n\n"
    assert parser.feed(stream) == [Event("ping", "{}"), Event("", "a\nb")]


def test_split_crlf_and_unfinished_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\ndata: \xc3") == [Event("", "x")]
    assert parser.feed(b"\xa9") == []
    assert parser.close() == [Event("", "\u00e9")]  # a last event with no blank line after it still counts
    assert parser.close() == []
