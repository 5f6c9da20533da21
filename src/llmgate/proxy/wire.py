"""Whole answers over HTTP/1.1, on the event loop's own transports: a small keep-alive pool per base URL.

Why not a general client: a whole answer's request must be abortable (a client that leaves closes its upstream
request at once), which pyreqwest's is not, and aiohttp's general machinery costs markedly more CPU per answer
than pyreqwest. This does only what a whole answer needs: one request written at once (or its body streamed,
chunked), one response read whole (framed by content-length, by chunks, or by the connection's end), connections
reused while the upstream keeps them alive. A cancelled or failed request aborts its connection. No proxy
support, no decompression, no redirects: bytes pass through as they came.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import time
from collections.abc import AsyncIterable
from urllib.parse import urlsplit

MAX_HEAD = 65536
"""A response head past this is refused (as aiohttp's default limits do)."""
IDLE_S = 15.0
"""An idle connection older than this is closed rather than reused (aiohttp's keep-alive default): upstreams
close theirs after a while, and a request written on a connection being closed fails."""
NO_BODY = frozenset((204, 304))
_HEX = b"0123456789abcdefABCDEF"
_FRAMING = frozenset(("content-length", "transfer-encoding"))
_BODILESS = frozenset(("GET", "HEAD"))
"""Methods whose empty request says no content-length (RFC 9110 §8.6: a request without content should not)."""


class WireError(Exception):
    """The exchange failed on the wire (refused, reset, closed early, malformed answer)."""


class WireConnectTimeout(WireError, TimeoutError):
    """No connection within the connect timeout."""


class _Answer:
    """The response being read: head, then body framed by content-length, chunks, or the connection's end."""

    __slots__ = ("body", "chunks", "done", "head", "headers", "keep_alive", "length", "status")

    def __init__(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.head = True
        self.length = -1
        """bytes of body expected; -1 chunked, -2 until the connection closes"""
        self.chunks: list[bytes] = []
        self.body = b""
        self.keep_alive = True
        self.done = False


class _Connection(asyncio.Protocol):
    """One upstream connection; reads at most one answer at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._buffer = bytearray()
        self._answer: _Answer | None = None
        self._head_only = False
        self._waiter: asyncio.Future[_Answer] | None = None
        self._paused: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not asyncio.Transport

    def expect(self, head_only: bool) -> asyncio.Future[_Answer]:
        """Start reading the next answer (HEAD: no body)."""
        self._answer, self._head_only = _Answer(), head_only
        self._waiter = asyncio.get_running_loop().create_future()
        if self._buffer:
            self._parse()
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._waiter is None:  # bytes nobody asked for: the connection cannot be trusted with a request
            self.closed = True
            assert self.transport is not None
            self.transport.close()
            return
        try:
            self._parse()
        except (ValueError, IndexError) as exc:
            self._fail(WireError(f"malformed answer from the upstream: {exc}"))

    def eof_received(self) -> bool | None:
        self.closed = True
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        answer = self._answer
        if answer is not None and not answer.head and answer.length == -2 and self._waiter is not None:
            answer.body = bytes(self._buffer)
            answer.keep_alive = False
            self._finish(answer)
        else:
            self._fail(WireError(f"the upstream closed the connection before the answer was complete ({exc})"
                                 if exc else "the upstream closed the connection before the answer was complete"))
        if self._paused is not None and not self._paused.done():
            self._paused.set_exception(WireError("the upstream closed the connection"))

    def pause_writing(self) -> None:
        self._paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._paused is not None and not self._paused.done():
            self._paused.set_result(None)
        self._paused = None

    def leftover(self) -> bool:
        """Bytes came past the answer's end: the next answer on this connection could not be told from them."""
        return bool(self._buffer)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is full."""
        if self._paused is not None:
            await self._paused

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _finish(self, answer: _Answer) -> None:
        answer.done = True
        self._answer = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def _parse(self) -> None:
        answer = self._answer
        assert answer is not None
        if answer.head and not self._parse_head(answer):
            return
        if answer.length >= 0:
            if len(self._buffer) >= answer.length:
                answer.body = bytes(self._buffer[:answer.length])
                del self._buffer[:answer.length]
                self._finish(answer)
        elif answer.length == -1:
            self._parse_chunks(answer)

    def _parse_head(self, answer: _Answer) -> bool:
        """Read the status line and headers once they are all here (skipping 1xx answers); False: not yet."""
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    raise ValueError("response head too long")
                return False
            lines = bytes(buffer[:end]).split(b"\r\n")
            del buffer[:end + 4]
            version, _, rest = lines[0].partition(b" ")
            status = int(rest[:3])
            if not version.startswith(b"HTTP/1.") or not 100 <= status <= 599:
                raise ValueError(f"bad status line {lines[0][:40]!r}")
            if status >= 200 or status == 101:
                break
        answer.status, answer.head = status, False
        length, chunked, keep_alive = _read_headers(lines, answer.headers, version == b"HTTP/1.1")
        if self._head_only or status in NO_BODY:
            length = 0
        elif chunked:
            length = -1
        elif length == -2:
            keep_alive = False
        answer.length, answer.keep_alive = length, keep_alive
        return True

    def _parse_chunks(self, answer: _Answer) -> None:
        buffer = self._buffer
        while True:
            line_end = buffer.find(b"\r\n")
            if line_end < 0:
                return
            size_field = bytes(buffer[:line_end]).split(b";", 1)[0].strip()
            if not size_field or size_field.strip(_HEX):  # int() would take "-1", "+1", "0x1", "1_0"
                raise ValueError(f"bad chunk size {size_field[:20]!r}")
            size = int(size_field, 16)
            if size == 0:
                trailers_end = buffer.find(b"\r\n\r\n", line_end)  # at line_end itself when no trailers
                if trailers_end < 0:
                    return
                del buffer[:trailers_end + 4]
                answer.body = b"".join(answer.chunks)
                self._finish(answer)
                return
            start = line_end + 2
            if len(buffer) < start + size + 2:
                return
            answer.chunks.append(bytes(buffer[start:start + size]))
            del buffer[:start + size + 2]


def _read_headers(lines: list[bytes], headers: list[tuple[bytes, bytes]],
                  keep_alive: bool) -> tuple[int, bool, bool]:
    """Append the head's header lines to `headers` (names lower-cased); the body's framing: content-length (-2:
    none), chunked, and whether the connection stays open."""
    length, chunked = -2, False
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise ValueError("header line without a colon")
        name, value = name.strip().lower(), value.strip()
        headers.append((name, value))
        if name == b"content-length":
            # digits only (int() would take "-1", "+1", " 1_0"); two that differ leave the body's end unknown
            if not value.isdigit() or (length != -2 and int(value) != length):
                raise ValueError(f"bad content-length {value[:20]!r}")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = value.lower().endswith(b"chunked")
        elif name == b"connection":
            tokens = value.lower()
            keep_alive = b"close" not in tokens and (keep_alive or b"keep-alive" in tokens)
    return length, chunked, keep_alive


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class WirePool:
    """Keep-alive connections to one base URL (http or https; `tls`: the context verifying the upstream, by default
    the system's CAs); `fetch` sends one request and reads its answer whole."""

    def __init__(self, base_url: str, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self._ssl = (tls or ssl.create_default_context()) if parts.scheme == "https" else None
        default_port = self.port == (443 if self._ssl else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_header = (host if default_port else f"{host}:{self.port}").encode("ascii")
        self._idle: collections.deque[_Connection] = collections.deque()
        """idle connections, the most recently used last"""

    async def _connect(self, connect_s: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_s):
                _, connection = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=self._ssl,
                    server_hostname=self.host if self._ssl else None)
        except TimeoutError as exc:
            raise WireConnectTimeout(f"timed out connecting to {self.host}:{self.port}") from exc
        except (OSError, ssl.SSLError) as exc:
            raise WireError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return connection

    def _reuse(self) -> _Connection | None:
        idle, now = self._idle, time.monotonic()
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            if now - connection.idle_since < IDLE_S:
                return connection
            assert connection.transport is not None
            connection.transport.close()
        return None

    def _request_head(self, method: str, path: str, headers: list[tuple[str, str]], length: int) -> bytes:
        lines = [f"{method} {self.prefix}{path} HTTP/1.1"]
        has_host = False
        for name, value in headers:
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                raise WireError(f"a line break in the request header {name!r}")
            lower = name.lower()
            if lower in _FRAMING:  # the body's framing is ours to say
                continue
            has_host = has_host or lower == "host"
            lines.append(f"{name}: {value}")
        head = "\r\n".join(lines).encode("utf-8")
        if not has_host:
            head += b"\r\nhost: " + self._host_header
        if length < 0:
            head += b"\r\ntransfer-encoding: chunked"
        elif length or method not in _BODILESS:
            head += b"\r\ncontent-length: %d" % length
        return head + b"\r\n\r\n"

    async def fetch(self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | AsyncIterable[bytes],
                    connect_s: float) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send the request and read its answer whole: status, headers (names lower-cased), body. Cancelled or
        failed, the connection is aborted (the upstream sees it closed at once)."""
        streamed = not isinstance(body, bytes)
        head = self._request_head(method, path, headers, -1 if streamed else len(body))  # type: ignore[arg-type]
        connection = self._reuse() or await self._connect(connect_s)
        transport = connection.transport
        assert transport is not None
        try:
            answer = connection.expect(head_only=method == "HEAD")
            if streamed:
                transport.write(head)
                async for data in body:  # type: ignore[union-attr]
                    if data:
                        transport.write(_chunk(data))
                        await connection.drain()
                transport.write(b"0\r\n\r\n")
            else:
                transport.write(head + body)  # type: ignore[operator]
            done = await answer
        except BaseException:
            transport.abort()
            raise
        if done.keep_alive and not connection.closed and not connection.leftover():
            self._release(connection)
        else:
            transport.close()
        return done.status, done.headers, done.body

    def _release(self, connection: _Connection) -> None:
        """Keep `connection` for the next request; close the oldest idle one if it has waited past IDLE_S."""
        idle = self._idle
        connection.idle_since = now = time.monotonic()
        idle.append(connection)
        oldest = idle[0]
        if oldest.closed or now - oldest.idle_since >= IDLE_S:
            idle.popleft()
            if oldest.transport is not None:
                oldest.transport.close()

    def close(self) -> None:
        """Close the idle connections (on shutdown)."""
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()
