"""Many long streams at once, and when each chunk arrives: the capacity test's client (benchmarks/capacity.py).

`python -m benchmarks.lab.streamload URL KEY STREAMS CHUNKS DELAY_MS [HOLD_S [RAMP_S]]` opens STREAMS connections
at once (or evenly over RAMP_S), each asking for streams of CHUNKS chunks DELAY_MS apart (the double's
`x-mock-chunks` / `x-mock-chunk-delay-ms`), and prints one JSON object: per-stream total times and first-byte
times, the chunks' lag, errors.

- HOLD_S 0 (one-shot): each connection asks for one stream (`connection: close`) and every stream is measured;
  all of them start in the same instant, a connection storm rather than a held load.
- HOLD_S > 0 (held, as wrk holds a load): each connection asks for stream after stream on its keep-alive
  connection until HOLD_S have passed. A connection's first stream is the opening storm, reported apart
  (`opening_*`); the streams after it are the held load (`totals_s`, `first_byte_s`, `lags_s`). Opened at
  once, the connections stay in step: every stream starts, and sends each chunk, in the same instant as all the
  others, round after round. RAMP_S spreads the openings evenly over that long (a stream's length spreads them
  over a whole round), so that streams start and chunks arrive spread out in time, as independent clients' do.

A chunk's lag is how late it arrived against the pace it was sent at: (its arrival - the stream's first chunk's
arrival) - its index x DELAY_MS. Against the double directly that is the client's and the double's own jitter;
through a gateway, the same plus what the gateway adds to a chunk after the first, so the difference of the two
distributions in one run is the delay a chunk gains in the gateway. An asyncio Protocol per connection counts SSE
frames (`\\n\\n`) as bytes arrive and parses nothing else, so one core keeps up with tens of thousands of chunks
a second.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import urllib.parse
from dataclasses import asdict, dataclass, field

_PATH = "/v1/chat/completions"
_BODY = b'{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Say hello."}]}'
_CHUNKED_END = b"0\r\n\r\n"


@dataclass
class StreamLoad:
    """What one run of STREAMS connections produced (seconds)."""

    streams: int
    ok: int = 0
    errors: int = 0
    totals_s: list[float] = field(default_factory=list)
    first_byte_s: list[float] = field(default_factory=list)
    lags_s: list[float] = field(default_factory=list)
    """Every chunk's lag after the first (see the module docstring), all measured streams together."""
    opening_totals_s: list[float] = field(default_factory=list)
    """Held runs: each connection's first stream's total time (the opening storm; not in `totals_s`)."""
    opening_first_byte_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0


class _Stream(asyncio.Protocol):
    """One connection: one request read to EOF (`connection: close`), or, held, requests back to back on it
    until `until` (each response's end is its chunked terminator after `[DONE]`)."""

    def __init__(self, request: bytes, done: asyncio.Future[None], *, until: float | None = None,
                 result: StreamLoad | None = None, delay_s: float = 0.0) -> None:
        self.request, self.done = request, done
        self.until, self.result, self.delay_s = until, result, delay_s
        self.transport: asyncio.Transport | None = None
        self.served = 0
        """Held: the streams this connection completed."""
        self.waiting = False
        """A request was sent and its response is not complete."""
        self._reset()

    def _reset(self) -> None:
        self.started = time.monotonic()
        self.head = b""
        self.in_body = False
        self.status_ok = False
        self.arrivals: list[float] = []
        self.tail = b""
        """The last bytes seen, so that a frame end split across two reads is still counted."""
        self.finished = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.started = time.monotonic()
        self.waiting = True
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status_ok = self.head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
            if not self.status_ok and self.until is not None:  # held: an error answer ends this connection's run
                self.transport.close()  # type: ignore[union-attr]
                return
            self.in_body = True
            data = self.head[end + 4:]
        joined = self.tail + data
        frames = joined.count(b"\n\n") - self.tail.count(b"\n\n")
        self.arrivals.extend([now] * frames)
        if b"[DONE]" in joined:
            self.finished = True
        self.tail = joined[-8:]
        if self.until is not None and self.finished and self.tail.endswith(_CHUNKED_END):
            self._next(now)

    def _next(self, now: float) -> None:
        """Held: this response is complete; record it, then ask for the next stream or close."""
        assert self.result is not None and self.transport is not None
        self.waiting = False
        if self.status_ok and self.arrivals:
            record(self.result, self, now, opening=self.served == 0)
            self.served += 1
        else:
            self.result.errors += 1
        self._reset()
        if now >= self.until:  # type: ignore[operator]
            self.transport.close()
            return
        self.waiting = True
        self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def record(result: StreamLoad, stream: _Stream, end: float, *, opening: bool) -> None:
    """A complete stream's figures: in the opening ones, or in the measured ones (with its chunks' lags)."""
    first = stream.arrivals[0]
    if opening:
        result.opening_totals_s.append(end - stream.started)
        result.opening_first_byte_s.append(first - stream.started)
        return
    result.ok += 1
    result.totals_s.append(end - stream.started)
    result.first_byte_s.append(first - stream.started)
    # Frame 0 is the first chunk; the last is [DONE], sent right after the last chunk: not paced, left out.
    result.lags_s.extend(t - first - i * stream.delay_s for i, t in enumerate(stream.arrivals[1:-1], 1))


async def _connected(host: str, port: int, protocol: _Stream, result: StreamLoad) -> bool:
    """Connect `protocol` and wait until its connection ends; False (an error counted) when it could not connect."""
    try:
        await asyncio.get_running_loop().create_connection(lambda: protocol, host, port)
        await protocol.done
    except OSError:
        result.errors += 1
        return False
    return True


async def _one(host: str, port: int, request: bytes, delay_s: float, result: StreamLoad) -> None:
    protocol = _Stream(request, asyncio.get_running_loop().create_future(), delay_s=delay_s)
    if not await _connected(host, port, protocol, result):
        return
    if not (protocol.status_ok and protocol.finished and protocol.arrivals):
        result.errors += 1
        return
    record(result, protocol, time.monotonic(), opening=False)


async def _held(host: str, port: int, request: bytes, delay_s: float, until: float, result: StreamLoad,
                opens_at: float) -> None:
    await asyncio.sleep(opens_at - time.monotonic())
    protocol = _Stream(request, asyncio.get_running_loop().create_future(), until=until, result=result,
                       delay_s=delay_s)
    if await _connected(host, port, protocol, result) and protocol.waiting:
        result.errors += 1  # closed by the other side before its response was complete


def request_bytes(url: str, key: str, chunks: int, delay_ms: float, *, close: bool = True) -> bytes:
    """The one request every connection sends."""
    u = urllib.parse.urlsplit(url)
    head = (f"POST {u.path.rstrip('/')}{_PATH} HTTP/1.1\r\nHost: {u.netloc}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {key}\r\nx-mock-chunks: {chunks}\r\nx-mock-chunk-delay-ms: {delay_ms:g}\r\n"
            f"content-length: {len(_BODY)}\r\n{'connection: close' + chr(13) + chr(10) if close else ''}\r\n")
    return head.encode("latin-1") + _BODY


async def hold(url: str, key: str, streams: int, chunks: int, delay_ms: float, hold_s: float = 0.0,
               ramp_s: float = 0.0) -> StreamLoad:
    """Open `streams` connections at once: one stream each (`hold_s` 0), or streams back to back on each for
    `hold_s` seconds after it opened (the openings spread evenly over `ramp_s`); wait for every one to end."""
    u = urllib.parse.urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    result = StreamLoad(streams)
    started = time.monotonic()
    if hold_s > 0:
        request = request_bytes(url, key, chunks, delay_ms, close=False)
        step = ramp_s / streams
        await asyncio.gather(*(_held(host, port, request, delay_ms / 1000, started + i * step + hold_s, result,
                                     started + i * step) for i in range(streams)))
    else:
        request = request_bytes(url, key, chunks, delay_ms)
        await asyncio.gather(*(_one(host, port, request, delay_ms / 1000, result) for _ in range(streams)))
    result.wall_s = time.monotonic() - started
    return result


def main(argv: list[str]) -> int:
    url, key, streams, chunks, delay_ms = argv[0], argv[1], int(argv[2]), int(argv[3]), float(argv[4])
    hold_s = float(argv[5]) if len(argv) > 5 else 0.0
    ramp_s = float(argv[6]) if len(argv) > 6 else 0.0
    import uvloop  # the gateways' loop: asyncio's own is slower at thousands of sockets

    # The client's own collections (thousands of connections' objects rescanned) would pause it, and add to every
    # lag it measures, the direct run's as much as a gateway's: what it leaves in cycles waits until it exits.
    gc.disable()
    result = uvloop.run(hold(url, key, streams, chunks, delay_ms, hold_s, ramp_s))
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
