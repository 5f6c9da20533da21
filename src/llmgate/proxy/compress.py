"""gzip for whole JSON answers, when the client accepts it: a `send` that holds the response start until it sees
the body, then compresses it or sends both as they are.

Only whole answers (one body message) of at least the threshold, with a JSON content-type and no
content-encoding of their own (an upstream's compressed answer passes through as it came), are compressed.
Streams never come here: the pipeline installs this only for requests answered whole.
"""

from __future__ import annotations

import zlib

from llmgate.proxy.asgi import Message, Send

GZIP_LEVEL = 1
"""zlib's fastest level: JSON shrinks most of the way already, and the CPU is the gateway's (nginx's default)."""
_GZIP_WBITS = 31
"""A gzip header and trailer around the deflate stream."""


def accepts_gzip(accept_encoding: bytes) -> bool:
    """Whether an `accept-encoding` value accepts gzip (`gzip` or `*`, with a q-value above 0)."""
    for part in accept_encoding.lower().split(b","):
        coding, _, params = part.partition(b";")
        if coding.strip() not in (b"gzip", b"x-gzip", b"*"):
            continue
        q = params.strip()
        if not q.startswith(b"q="):
            return True
        try:
            return float(q[2:]) > 0
        except ValueError:
            return False
    return False


def gzip_send(send: Send, accept_encoding: bytes, min_bytes: int) -> Send:
    """`send`, compressing a whole JSON answer of at least `min_bytes`; `send` itself when the client does not
    accept gzip."""
    if not accept_encoding or not accepts_gzip(accept_encoding):
        return send
    held: list[Message] = []

    async def send_gzipped(message: Message) -> None:
        if message["type"] == "http.response.start":
            held.append(message)
            return
        if not held:  # the start went out: the rest as it comes
            await send(message)
            return
        start = held.pop()
        body: bytes = message.get("body", b"")
        if message.get("more_body", False) or len(body) < min_bytes or not _compressible(start["headers"]):
            await send(start)
            await send(message)
            return
        data = zlib.compress(body, GZIP_LEVEL, _GZIP_WBITS)
        headers = [header for header in start["headers"] if header[0] != b"content-length"]
        headers += [(b"content-encoding", b"gzip"), (b"vary", b"accept-encoding"),
                    (b"content-length", b"%d" % len(data))]
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return send_gzipped


def _compressible(headers: list[tuple[bytes, bytes]]) -> bool:
    """JSON, not compressed already."""
    is_json = False
    for name, value in headers:
        if name == b"content-encoding":
            return False
        if name == b"content-type":
            is_json = b"json" in value
    return is_json
