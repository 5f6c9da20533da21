"""The built-in generator's HTTP/1.1 response framing (the network part is exercised by the integration test)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from benchmarks.lab.asyncload import ResponseParser, build_request

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"


def test_content_length_body_completes_exactly_at_its_length() -> None:
    p = ResponseParser()
    assert p.feed(HEAD + b"content-length: 5\r\n\r\nhel") == b""
    assert p.body_started and not p.done and p.status == 200
    assert p.feed(b"lo") == b""
    assert p.done


def test_chunked_stream_completes_at_the_zero_chunk() -> None:
    p = ResponseParser()
    p.feed(HEAD.replace(b"200 OK", b"201 Created") + b"Transfer-Encoding: chunked\r\n\r\n")
    assert not p.body_started and p.status == 201
    p.feed(b"6\r\ndata: \r\n")
    assert p.body_started and not p.done
    p.feed(b"3;ext=1\r\n{}\n\r\n0\r\n")
    assert not p.done  # the final CRLF has not arrived
    assert p.feed(b"\r\nHTTP/1.1") == b"HTTP/1.1"
    assert p.done


@given(st.lists(st.binary(min_size=0, max_size=40), max_size=8), st.integers(min_value=1, max_value=7))
def test_chunked_framing_survives_any_split(chunks: list[bytes], step: int) -> None:
    wire = HEAD + b"transfer-encoding: chunked\r\n\r\n"
    wire += b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c) + b"0\r\n\r\n"
    p = ResponseParser()
    for i in range(0, len(wire), step):
        assert not p.done
        p.feed(wire[i:i + step])
    assert p.done


def test_error_status_is_read() -> None:
    p = ResponseParser()
    p.feed(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n")
    assert p.done and p.status == 429


def test_request_bytes() -> None:
    req = build_request("http://127.0.0.1:9/base/", "/v1/chat/completions", b'{"a":1}', "sk-x")
    assert req.startswith(b"POST /base/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:9\r\n")
    assert b"authorization: Bearer sk-x\r\n" in req and b"content-length: 7\r\n" in req
    assert req.endswith(b'\r\n\r\n{"a":1}')
