"""The built-in load generator, for machines without wrk: HTTP/1.1 keep-alive connections on one event loop.

Each of `concurrency` connections sends the same request again as soon as the previous answer is complete
(closed loop, like wrk). It records the time to the whole answer and, for streams, the time to the first body
byte. It is an asyncio Protocol parsing only what it must (status, content-length or chunked framing), so one
core drives several thousand requests a second; its ceiling is measured against the upstream double and
printed by the runner, which warns when a target comes within 3x of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import cast


@dataclass
class RawLoad:
    """What one run produced: per-request latencies (s), first-byte times (s), counts."""

    latencies_s: list[float] = field(default_factory=list)
    first_byte_s: list[float] = field(default_factory=list)
    non_2xx: int = 0
    connect_errors: int = 0
    read_errors: int = 0
    duration_s: float = 0.0


def build_request(url: str, path: str, body: bytes, key: str) -> bytes:
    """The request bytes, built once and sent as they are for every request."""
    u = urllib.parse.urlsplit(url)
    head = (
        f"POST {u.path.rstrip('/')}{path} HTTP/1.1\r\nHost: {u.netloc}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ResponseParser:
    """Incremental HTTP/1.1 response framing: feed() bytes; `done` once one whole response has been read."""

    __slots__ = ("_buf", "_chunked", "_length", "_pos", "body_started", "done", "status")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = -1  # start of the body; -1 while the head is incomplete
        self._chunked = False
        self._length = 0
        self.status = 0
        self.body_started = False
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Take bytes; return what follows the end of the response (bytes of the next one, normally none)."""
        self._buf += data
        if self._pos < 0 and not self._head():
            return b""
        if len(self._buf) > self._pos:
            self.body_started = True
        end = self._chunked_end() if self._chunked else (self._pos + self._length)
        if end < 0 or len(self._buf) < end:
            return b""
        self.done = True
        return bytes(self._buf[end:])

    def _head(self) -> bool:
        end = self._buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(self._buf[:end]).split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self._length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value.lower():
                self._chunked = True
        self._pos = end + 4
        return True

    def _chunked_end(self) -> int:
        """Index just past the last chunk, or -1 while incomplete. Skips whole chunks already seen."""
        buf, pos = self._buf, self._pos
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return -1
            size = int(bytes(buf[pos:line_end]).split(b";", 1)[0], 16)
            if size == 0:
                trailer_end = buf.find(b"\r\n", line_end + 2)
                return -1 if trailer_end < 0 else trailer_end + 2
            nxt = line_end + 2 + size + 2
            if len(buf) < nxt:
                return -1
            pos = self._pos = nxt


class _Connection(asyncio.Protocol):
    """One keep-alive connection; `exchange()` sends the request and waits for the whole answer."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = ResponseParser()
        self.waiter: asyncio.Future[None] | None = None
        self.sent_at = 0.0
        self.first_byte_at = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        started = parser.body_started
        parser.feed(data)
        if not started and parser.body_started:
            self.first_byte_at = time.perf_counter()
        if parser.done and self.waiter and not self.waiter.done():
            self.waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.waiter and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(str(exc or "closed by the server")))

    async def exchange(self, request: bytes) -> tuple[int, float, float]:
        """(status, seconds to the whole answer, seconds to its first body byte)."""
        if self.transport is None:
            raise ConnectionError("not connected")
        self.parser = ResponseParser()
        self.waiter = asyncio.get_running_loop().create_future()
        self.sent_at = self.first_byte_at = time.perf_counter()
        self.transport.write(request)
        await self.waiter
        end = time.perf_counter()
        return self.parser.status, end - self.sent_at, max(0.0, self.first_byte_at - self.sent_at)


async def _worker(host: str, port: int, request: bytes, deadline: float, out: RawLoad) -> None:
    loop = asyncio.get_running_loop()
    conn: _Connection | None = None
    while time.perf_counter() < deadline:
        if conn is None or conn.transport is None:
            try:
                _, conn = await loop.create_connection(_Connection, host, port)
            except OSError:
                out.connect_errors += 1
                await asyncio.sleep(0.01)
                continue
        try:
            # a request in flight at the deadline may finish; a stuck one fails after 10 s more
            timeout_s = deadline - time.perf_counter() + 10.0
            status, latency, first = await asyncio.wait_for(conn.exchange(request), timeout_s)
        except (ConnectionError, TimeoutError):
            out.read_errors += 1
            conn = None
            continue
        if 200 <= status < 300:
            out.latencies_s.append(latency)
            out.first_byte_s.append(first)
        else:
            out.non_2xx += 1
    if conn is not None and conn.transport is not None:
        conn.transport.close()


async def generate(url: str, path: str, body: bytes, key: str, concurrency: int, duration_s: float) -> RawLoad:
    """Closed-loop load: `concurrency` connections for `duration_s` seconds."""
    u = urllib.parse.urlsplit(url)
    request = build_request(url, path, body, key)
    out = RawLoad()
    start = time.perf_counter()
    deadline = start + duration_s
    tasks = [
        asyncio.ensure_future(_worker(u.hostname or "127.0.0.1", u.port or 80, request, deadline, out))
        for _ in range(concurrency)
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
    out.duration_s = time.perf_counter() - start
    return out


def run_load(url: str, path: str, body: bytes, key: str, concurrency: int, duration_s: float) -> RawLoad:
    """generate() on a fresh event loop (uvloop when installed)."""
    try:
        import uvloop

        return uvloop.run(generate(url, path, body, key, concurrency, duration_s))
    except ImportError:  # pragma: no cover - uvloop comes with granian[uvloop]
        return asyncio.run(generate(url, path, body, key, concurrency, duration_s))
