"""What reaches llmgate over a real socket, and what granian refuses before it does: a body that stops coming
(408), a head past `max_header_bytes` (granian's 431), malformed chunked framing (400 in our shape), a missing
or repeated Host (400). Raw sockets, so nothing on the client side fixes the bytes up."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.servers import MASTER_KEY, Gateway, gateway_env, start_gateway

AUTH = f"authorization: Bearer {MASTER_KEY}\r\n".encode()
BODY = b'{"model":"m","messages":[]}'


@pytest.fixture(scope="module")
def gw(upstream: str) -> Iterator[Gateway]:
    with start_gateway(gateway_env(upstream, LLMGATE_BODY_TIMEOUT_S="0.5")) as gateway:
        yield gateway


def exchange(gw: Gateway, data: bytes, wait_s: float = 10.0) -> tuple[int, dict[str, str], bytes, bool]:
    """Send `data` on a new connection; the status, headers and body of the answer, and whether the server then
    closed the connection (read until it did, or `wait_s` passed)."""
    host, port = gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(data)
        sock.settimeout(wait_s)
        received = b""
        closed = False
        try:
            while chunk := sock.recv(65536):
                received += chunk
            closed = True
        except TimeoutError:
            pass
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body, closed


def post(head: bytes, body: bytes) -> bytes:
    return b"POST /v1/chat/completions HTTP/1.1\r\n" + AUTH + head + b"\r\n" + body


def test_a_body_that_stops_coming_is_408_and_the_connection_closed(gw: Gateway) -> None:
    status, headers, body, closed = exchange(gw, post(b"host: x\r\ncontent-length: 100\r\n", BODY[:10]))
    assert (status, closed, headers["connection"]) == (408, True, "close")
    assert json.loads(body)["error"]["code"] == "request_timeout"


def test_a_head_past_max_header_bytes_is_granians_431(gw: Gateway) -> None:
    """granian answers it (an empty body, the connection closed) before llmgate sees the request."""
    big = b"GET /health HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n"
    status, _, body, closed = exchange(gw, big)
    assert (status, body, closed) == (431, b"", True)
    under = b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\nx-big: " + b"a" * 50_000 + b"\r\n\r\n"
    assert exchange(gw, under)[0] == 200


@pytest.mark.parametrize("chunks", [
    b"%x\r\n" % (len(BODY) + 1) + BODY + b"\r\n0\r\n\r\n",  # a chunk declared one byte longer than it is
    b"%x\r\n" % (len(BODY) - 1) + BODY + b"\r\n0\r\n\r\n",  # ... one byte shorter
    b"zz\r\n" + BODY + b"\r\n0\r\n\r\n",                     # a chunk size that is no number
])
def test_malformed_chunked_framing_is_400_in_our_shape_and_logged(gw: Gateway, chunks: bytes) -> None:
    """granian hands a body it cannot read to the app as `http.disconnect`; it answered its plain-text 500,
    nothing logged, before llmgate answered it."""
    status, headers, body, closed = exchange(gw, post(b"host: x\r\ntransfer-encoding: chunked\r\n", chunks))
    assert (status, closed, headers["connection"]) == (400, True, "close")
    assert json.loads(body)["error"]["code"] == "incomplete_body"
    deadline = time.monotonic() + 5
    while "the request body ended early" not in gw.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "the request body ended early" in gw.logs()


@pytest.mark.parametrize(("hosts", "says"), [(b"", "no Host header"), (b"host: a\r\nhost: b\r\n", "more than one")])
def test_a_missing_or_repeated_host_is_400(gw: Gateway, hosts: bytes, says: str) -> None:
    head = hosts + b"connection: close\r\ncontent-length: %d\r\n" % len(BODY)
    status, _, body, _ = exchange(gw, post(head, BODY))
    assert status == 400 and says in json.loads(body)["error"]["message"]
