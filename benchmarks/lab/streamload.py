"""Many long streams at once, and when each chunk arrives: the capacity test's client (benchmarks/capacity.py).

`python -m benchmarks.lab.streamload URL KEY STREAMS CHUNKS DELAY_MS` opens STREAMS connections at once, each
asking for one stream of CHUNKS chunks DELAY_MS apart (the double's `x-mock-chunks` / `x-mock-chunk-delay-ms`),
and prints one JSON object: per-stream total times and first-byte times, the chunks' lag, errors.

A chunk's lag is how late it arrived against the pace it was sent at: (its arrival - the stream's first chunk's
arrival) - its index x DELAY_MS. Against the double directly that is the client's and the double's own jitter;
through a gateway, the same plus what the gateway adds to a chunk after the first, so the difference of the two
distributions in one run is the delay a chunk gains in the gateway. An asyncio Protocol per connection counts SSE
frames (`\\n\\n`) as bytes arrive and parses nothing else, so one core keeps up with tens of thousands of chunks
a second.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.parse
from dataclasses import asdict, dataclass, field

_PATH = "/v1/chat/completions"
_BODY = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello."}]}'


@dataclass
class StreamLoad:
    """What one run of STREAMS streams produced (seconds)."""

    streams: int
    ok: int = 0
    errors: int = 0
    totals_s: list[float] = field(default_factory=list)
    first_byte_s: list[float] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list)
    """Every chunk's lag after the first (see the module docstring), all streams together."""
    wall_s: float = 0.0


class _Stream(asyncio.Protocol):
    """One connection, one request, read to EOF (the request says `connection: close`)."""

    def __init__(self, request: bytes, done: asyncio.Future[None]) -> None:
        self.request, self.done = request, done
        self.started = time.monotonic()
        self.head = b""
        self.in_body = False
        self.status_ok = False
        self.arrivals: list[float] = []
        self.tail = b""
        """The last bytes seen, so that a frame end split across two reads is still counted."""
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status_ok = self.head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
            self.in_body = True
            data = self.head[end + 4:]
        joined = self.tail + data
        frames = joined.count(b"\n\n") - self.tail.count(b"\n\n")
        self.arrivals.extend([now] * frames)
        if b"[DONE]" in joined:
            self.finished = True
        self.tail = joined[-8:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _one(host: str, port: int, request: bytes, delay_s: float, result: StreamLoad) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    protocol = _Stream(request, done)
    try:
        await loop.create_connection(lambda: protocol, host, port)
        await done
    except OSError:
        result.errors += 1
        return
    end = time.monotonic()
    if not (protocol.status_ok and protocol.finished and protocol.arrivals):
        result.errors += 1
        return
    result.ok += 1
    result.totals_s.append(end - protocol.started)
    first = protocol.arrivals[0]
    result.first_byte_s.append(first - protocol.started)
    # Frame 0 is the first chunk; the last is [DONE], sent right after the last chunk: not paced, left out.
    result.lags_s.extend(t - first - i * delay_s for i, t in enumerate(protocol.arrivals[1:-1], 1))


def request_bytes(url: str, key: str, chunks: int, delay_ms: float) -> bytes:
    """The one request every connection sends."""
    u = urllib.parse.urlsplit(url)
    head = (f"POST {u.path.rstrip('/')}{_PATH} HTTP/1.1\r\nHost: {u.netloc}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {key}\r\nx-mock-chunks: {chunks}\r\nx-mock-chunk-delay-ms: {delay_ms:g}\r\n"
            f"content-length: {len(_BODY)}\r\nconnection: close\r\n\r\n")
    return head.encode("latin-1") + _BODY


async def hold(url: str, key: str, streams: int, chunks: int, delay_ms: float) -> StreamLoad:
    """Open `streams` streams at once and wait for every one to end."""
    u = urllib.parse.urlsplit(url)
    request = request_bytes(url, key, chunks, delay_ms)
    result = StreamLoad(streams)
    started = time.monotonic()
    await asyncio.gather(*(_one(u.hostname or "127.0.0.1", u.port or 80, request, delay_ms / 1000, result)
                           for _ in range(streams)))
    result.wall_s = time.monotonic() - started
    return result


def main(argv: list[str]) -> int:
    url, key, streams, chunks, delay_ms = argv[0], argv[1], int(argv[2]), int(argv[3]), float(argv[4])
    import uvloop  # the gateways' loop: asyncio's own is slower at thousands of sockets

    result = uvloop.run(hold(url, key, streams, chunks, delay_ms))
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
